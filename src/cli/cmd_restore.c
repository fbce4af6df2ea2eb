/* bulwark restore: not built yet (being written). */
#include "cli.h"

int cmd_restore(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark restore: not built yet\n");
	return EXIT_ERROR;
}
