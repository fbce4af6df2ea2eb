/* bulwark ls: not built yet (being written). */
#include "cli.h"

int cmd_ls(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark ls: not built yet\n");
	return EXIT_ERROR;
}
