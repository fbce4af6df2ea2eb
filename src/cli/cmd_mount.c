/* bulwark mount: not built yet (being written). */
#include "cli.h"

int cmd_mount(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bulwark mount: not built yet\n");
	return EXIT_ERROR;
}
