# `cmake --install`: the sparkv binary, its fetch script (share/sparkv, found next to the binary at
# run time), the product libraries with the public headers, a CMake package (find_package(sparkv),
# target sparkv::sparkv), a pkg-config file; and CPack's .deb of the same.
include(CMakePackageConfigHelpers)

# The facade target users link: the api module and, through it, every module below.
add_library(sparkv_sparkv INTERFACE)
set_target_properties(sparkv_sparkv PROPERTIES EXPORT_NAME sparkv)
target_link_libraries(sparkv_sparkv INTERFACE sparkv_api)
add_library(sparkv::sparkv ALIAS sparkv_sparkv)

get_property(sparkv_modules GLOBAL PROPERTY SPARKV_MODULES)
list(REMOVE_ITEM sparkv_modules sparkv_cli)  # the command line's own support, not for embedding

install(TARGETS sparkv RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(PROGRAMS scripts/fetch_assets.py DESTINATION ${CMAKE_INSTALL_DATADIR}/sparkv)
install(DIRECTORY share/codec-profiles DESTINATION ${CMAKE_INSTALL_DATADIR}/sparkv)
install(TARGETS ${sparkv_modules} sparkv_sparkv EXPORT sparkvTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/sparkv DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/sparkv)
install(EXPORT sparkvTargets NAMESPACE sparkv:: DESTINATION ${config_dir})
configure_package_config_file(cmake/sparkvConfig.cmake.in ${CMAKE_BINARY_DIR}/sparkvConfig.cmake
                              INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/sparkvConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/sparkvConfig.cmake ${CMAKE_BINARY_DIR}/sparkvConfigVersion.cmake
        DESTINATION ${config_dir})

# pkg-config: the libraries from the top of the layering down (static archives link in order).
set(pc_libs "")
foreach(module api runtime cloud plan net store codec engine common)
  string(APPEND pc_libs " -lsparkv_${module}")
endforeach()
file(RELATIVE_PATH pc_to_prefix /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(cmake/sparkv.pc.in ${CMAKE_BINARY_DIR}/sparkv.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/sparkv.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# CPack: `cpack -G DEB --config build/CPackConfig.cmake` (or `cmake --build build --target package`).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sparkv)
set(CPACK_PACKAGE_VENDOR "SparKV")
set(CPACK_PACKAGE_CONTACT "SparKV maintainers <sparkv@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Loads an on-device LLM's KV cache by streaming and computing it at once")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)   # run-time libraries from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, python3-pip")  # model --fetch runs pip
set(CPACK_DEBIAN_PACKAGE_SECTION science)
include(CPack)
