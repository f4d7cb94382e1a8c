#include "agent/cli.h"

int main(int argc, char** argv) { return ghostwatch::cli_main(argc, argv); }
