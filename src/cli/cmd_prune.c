/* bulwark prune: not built yet (being written). */
#include "cli.h"

int cmd_prune(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark prune: not built yet\n");
	return EXIT_ERROR;
}
