/* bulwark stats: not built yet (being written). */
#include "cli.h"

int cmd_stats(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark stats: not built yet\n");
	return EXIT_ERROR;
}
