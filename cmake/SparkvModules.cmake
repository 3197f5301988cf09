# One static library per module under src/, and the one-way layering between them enforced by the
# build: a module's sources see the headers of exactly the modules it may use (itself and the ones
# it names in DEPS), because its include directory is a generated folder that holds a symlink per
# visible module (build/layers/<module>/<name> -> src/<name>) instead of src/ itself. An
# `#include "runtime/..."` in an engine source therefore fails to compile ("No such file or
# directory"); the README's architecture section draws the graph.
#
#   sparkv_add_module(<name> [DEPS <module>...])   defines sparkv_<name> (alias sparkv::<name>)
#
# DEPS lists every module whose headers the module includes (not only the direct ones), so the
# list is also the module's complete allowed view.
set(SPARKV_LAYERS_DIR ${CMAKE_BINARY_DIR}/layers)
set_property(GLOBAL PROPERTY SPARKV_MODULES "")

# A folder of symlinks, one per named module under src/ (plus testkit when asked).
function(sparkv_layer_dir out_var name)
  set(dir ${SPARKV_LAYERS_DIR}/${name})
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  foreach(module IN LISTS ARGN)
    if(module STREQUAL "testkit")
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/testkit ${dir}/testkit SYMBOLIC)
    else()
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${module} ${dir}/${module} SYMBOLIC)
    endif()
  endforeach()
  set(${out_var} ${dir} PARENT_SCOPE)
endfunction()

function(sparkv_add_module name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  set(target sparkv_${name})
  add_library(${target} STATIC)
  add_library(sparkv::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  sparkv_layer_dir(dir ${name} ${name} ${ARG_DEPS})
  target_include_directories(${target}
    PRIVATE $<BUILD_INTERFACE:${dir}>
    PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  foreach(dep IN LISTS ARG_DEPS)
    target_link_libraries(${target} PUBLIC sparkv_${dep})
  endforeach()
  if(SPARKV_NATIVE)
    target_compile_options(${target} PRIVATE -march=native)
  endif()
  set_property(GLOBAL APPEND PROPERTY SPARKV_MODULES ${target})
endfunction()
