/* bulwark check: not built yet (being written). */
#include "cli.h"

int cmd_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark check: not built yet\n");
	return EXIT_ERROR;
}
