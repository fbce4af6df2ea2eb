/* bulwark diff: not built yet (being written). */
#include "cli.h"

int cmd_diff(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark diff: not built yet\n");
	return EXIT_ERROR;
}
