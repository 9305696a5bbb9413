// kiln: the one command-line tool, thin over the library.
//   kiln info MODEL | run MODEL | eval MODEL | bench MODEL   (--help on each)
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln: make trained neural networks smaller and faster, and measure what it gained"};
  app.require_subcommand(1);
  kiln::cli::add_info_command(app);
  kiln::cli::add_run_command(app);
  kiln::cli::add_eval_command(app);
  kiln::cli::add_bench_command(app);
  kiln::cli::add_convert_command(app);
  kiln::cli::add_quantize_command(app);
  kiln::cli::add_optimize_command(app);
  kiln::cli::add_prune_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "kiln: error: %s (see kiln --help)\n", e.what());
    return 2;
  } catch (const kiln::cli::CliError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln: error: %s\n", e.message.c_str());
    return e.code;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kiln: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    // A library error that escaped the Result path (e.g. a file removed while
    // kiln runs): still one line and a non-zero exit, never an abort.
    std::fflush(stdout);
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
