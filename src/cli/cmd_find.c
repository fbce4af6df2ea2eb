/* bulwark find: not built yet (being written). */
#include "cli.h"

int cmd_find(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark find: not built yet\n");
	return EXIT_ERROR;
}
