/* libFuzzer target: the guard's journal, as rollback replays it.  A
 * journal is written by the guard but lives on disk where a damaged
 * machine or an attacker may have changed it; replay must stay bounded
 * and never crash.  Dry run: nothing is changed on this machine. */
#include <bulwark/guard.h>

#include "journal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/bw-fuzz-journal-XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	/* one line on its own */
	struct gj_entry e;
	bw_err_clear();
	if (gj_entry_parse((const char *)data, size, &e) == 0)
		gj_entry_release(&e);
	/* the whole input as a journal */
	char p[128];
	snprintf(p, sizeof p, "%s/journal.jsonl", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	struct bw_guard_rollback_opts o = {0};
	o.dry_run = 1;
	o.since_ns = 0;
	struct bw_guard_rollback_stats st;
	bw_err_clear();
	(void)bw_guard_rollback(dir, &o, &st);
	int pid = 1234;
	o.pids = &pid;
	o.npids = 1;
	o.since_ns = 5;
	(void)bw_guard_rollback(dir, &o, &st);
	return 0;
}
