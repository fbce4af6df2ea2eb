/* bulwark forget: not built yet (being written). */
#include "cli.h"

int cmd_forget(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark forget: not built yet\n");
	return EXIT_ERROR;
}
