// `sparkv gc`: removes the objects no manifest names (attempts that lost a race, crashed
// workers' partial attempts, unfinished uploads) once nothing in them changed for --min-age.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "store/garbage.h"
#include "store/store_location.h"

namespace sparkv::cli {

namespace {

struct GcCliOptions {
    std::string store;
    double min_age_s = 3600;
    bool dry_run = false;
    bool json = false;
};

int run(const GcCliOptions& opt) {
    if (!(opt.min_age_s >= 0)) fail("--min-age must be a number of seconds >= 0");
    ContextStore store(open_store(opt.store, StoreAccess::existing));
    GcOptions options;
    options.min_age = std::chrono::seconds(static_cast<int64_t>(opt.min_age_s));
    options.dry_run = opt.dry_run;
    const GcReport report = collect_garbage(store, options);
    if (opt.json) {
        nlohmann::json removed = nlohmann::json::array();
        for (const auto& r : report.removed)
            removed.push_back({{"context_id", r.context_id},
                               {"attempt", r.group},
                               {"objects", r.objects},
                               {"bytes", r.bytes},
                               {"context_committed", r.committed_context}});
        const nlohmann::json j = {{"store", store.backend().describe()},
                                  {"dry_run", opt.dry_run},
                                  {"contexts", report.contexts},
                                  {"removed", removed},
                                  {"objects_removed", report.objects_removed()},
                                  {"bytes_removed", report.bytes_removed()},
                                  {"kept_young_attempts", report.kept_attempts},
                                  {"unreadable_contexts", report.unreadable},
                                  {"incomplete_writes_removed", report.incomplete_writes}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    for (const auto& r : report.removed)
        std::printf("%s %s/%s: %zu objects, %.2f MB%s\n", opt.dry_run ? "would remove" : "removed",
                    r.context_id.c_str(), r.group.c_str(), r.objects,
                    static_cast<double>(r.bytes) / 1e6,
                    r.committed_context ? "" : " (context never committed)");
    std::printf(
        "%s: %zu contexts, %s %zu objects (%.2f MB) in %zu groups; kept %zu attempts younger than "
        "%.0f s; %zu unreadable manifests; %zu unfinished writes removed\n",
        store.backend().describe().c_str(), report.contexts,
        opt.dry_run ? "would remove" : "removed", report.objects_removed(),
        static_cast<double>(report.bytes_removed()) / 1e6, report.removed.size(),
        report.kept_attempts, opt.min_age_s, report.unreadable, report.incomplete_writes);
    return 0;
}

}  // namespace

CommandRunner add_gc_command(CLI::App& app) {
    auto opt = std::make_shared<GcCliOptions>();
    auto* cmd = app.add_subcommand(
        "gc", "Remove objects no manifest names (lost races, crashed ingests) once they are old");
    cmd->add_option("--store", opt->store, "Store: a directory or s3://BUCKET/PREFIX")->required();
    cmd->add_option("--min-age", opt->min_age_s,
                    "Seconds without a change before an unreferenced attempt is removed (an "
                    "ingest still running writes more often than this)")
        ->capture_default_str();
    cmd->add_flag("--dry-run", opt->dry_run, "Report what would be removed, remove nothing");
    cmd->add_flag("--json", opt->json, "Print a JSON report");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
