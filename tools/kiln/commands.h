// One function per subcommand: it registers its options and its action on the app.
#pragma once
#include <CLI/CLI.hpp>

namespace kiln::cli {

void add_info_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_optimize_command(CLI::App& app);
void add_prune_command(CLI::App& app);

}  // namespace kiln::cli
