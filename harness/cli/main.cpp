#include "harness/cli/registry.h"

int main(int argc, char** argv) { return gb::cli::run(argc, argv); }
