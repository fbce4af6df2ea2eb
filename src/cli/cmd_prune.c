/* bulwark prune */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark prune [--dry-run] [--max-unused FRACTION] [--stale-after DURATION]\n"
"                     [--json]\n"
"\n"
"Delete the packs no snapshot needs any more (after `bulwark forget`), and\n"
"packs left behind by interrupted backups.  Backups may run at the same\n"
"time: deletion happens in two phases.\n"
"\n"
"  1. Packs found unused are written into a deletion plan.  Backups that\n"
"     start after the plan never reuse data from its packs.\n"
"  2. Once no backup that started before the plan is still running, every\n"
"     snapshot is checked again (a backup that ended meanwhile may need a\n"
"     planned pack: it is kept), the index is rewritten without the planned\n"
"     packs, and they are deleted.\n"
"\n"
"When no backup is running both phases happen in one run.  Otherwise prune\n"
"says how much is waiting; run it again later (e.g. from cron).\n"
"Packs whose share of unused bytes exceeds FRACTION are repacked: their\n"
"used blobs are copied into new packs and the old packs are planned.\n"
"\n"
"A killed prune leaves a consistent repository; run it again.\n"
"\n"
"Options:\n"
"  -n, --dry-run             show what would be done; write nothing\n"
"      --max-unused F        repack packs with more than F (0..1) unused\n"
"                            bytes (default 0.5; 1 = never repack)\n"
"      --stale-after D       treat a session lock not refreshed for D as\n"
"                            dead (default 30min; e.g. 2h, 1d).  Sessions on\n"
"                            this host whose process is gone are dead at once\n"
"      --json                print the summary as JSON\n"
"\n"
"Exit codes: 0 done (also when plans must wait), 1 failure (nothing unsafe\n"
"was done; an append-only repository refuses prune).\n");
}

static void print_summary(const struct bw_prune_opts *o, const struct bw_prune_stats *st)
{
	char freed[32], pend[32];
	bw_fmt_bytes(st->bytes_freed, freed);
	bw_fmt_bytes(st->bytes_pending, pend);
	if (g.json) {
		json_t *j = json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		                      "message_type", "summary", "dry_run", o->dry_run,
		                      "packs_total", (json_int_t)st->packs_total,
		                      "packs_deleted", (json_int_t)st->packs_deleted,
		                      "packs_planned", (json_int_t)st->packs_planned,
		                      "packs_repacked", (json_int_t)st->packs_repacked,
		                      "blobs_kept", (json_int_t)st->blobs_kept,
		                      "blobs_removed", (json_int_t)st->blobs_removed,
		                      "bytes_freed", (json_int_t)st->bytes_freed,
		                      "bytes_pending", (json_int_t)st->bytes_pending,
		                      "plans_completed", (json_int_t)st->plans_completed,
		                      "plans_waiting", (json_int_t)st->plans_waiting,
		                      "sessions_waiting", (json_int_t)st->sessions_waiting);
		cli_json_print(j);
		return;
	}
	if (g.quiet)
		return;
	const char *w = o->dry_run ? "would be " : "";
	printf("%llu packs, %llu blobs in use\n", (unsigned long long)st->packs_total,
	       (unsigned long long)st->blobs_kept);
	if (st->packs_repacked)
		printf("%llu packs %srepacked\n", (unsigned long long)st->packs_repacked, w);
	printf("%llu packs %sdeleted, %s %sfreed\n", (unsigned long long)st->packs_deleted,
	       w, freed, w);
	if (o->dry_run && st->packs_planned)
		printf("%llu packs (%s) would be planned for deletion\n",
		       (unsigned long long)st->packs_planned, pend);
	else if (st->plans_waiting)
		printf("%llu packs (%s) waiting for %llu running session%s; run prune again later\n",
		       (unsigned long long)st->packs_planned, pend,
		       (unsigned long long)st->sessions_waiting,
		       st->sessions_waiting == 1 ? "" : "s");
	if (o->dry_run)
		printf("Dry run: nothing was changed\n");
}

int cli_prune_run(struct bw_repo *repo, const struct bw_prune_opts *o)
{
	struct bw_prune_opts oo = *o;
	struct bw_prune_stats st;
	struct cli_progress pr;
	cli_progress_init(&pr, "pruned");
	if (pr.active) {
		oo.progress = cli_progress_cb;
		oo.progress_arg = &pr;
	}
	int r = bw_prune(repo, &oo, &st);
	cli_progress_done(&pr);
	if (r)
		return cli_fail("prune", r);
	print_summary(o, &st);
	return EXIT_OK;
}

int cmd_prune(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"max-unused", required_argument, NULL, 1},
		{"stale-after", required_argument, NULL, 2},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bw_prune_opts o;
	int c, r;
	memset(&o, 0, sizeof o);
	o.max_unused = 0.5;
	while ((c = cli_getopt(argc, argv, "n", opts)) != -1) {
		switch (c) {
		case 'n': o.dry_run = 1; break;
		case 1: {
			char *end;
			double f = strtod(optarg, &end);
			if (end == optarg || *end || !(f >= 0.0 && f <= 1.0))
				return cli_usage_error("prune", "--max-unused takes a fraction from 0 to 1");
			o.max_unused = f;
			break;
		}
		case 2:
			if (cli_parse_duration(optarg, &o.stale_after_ns) || o.stale_after_ns <= 0)
				return cli_usage_error("prune", "--stale-after takes a duration such as 30min, 2h, 1d");
			break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("prune", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("prune", "unexpected argument '%s'", argv[optind]);
	struct bw_repo *repo;
	if ((r = cli_open_repo("prune", &repo)))
		return cli_fail("prune", r);
	int code = cli_prune_run(repo, &o);
	bw_repo_close(repo);
	return code;
}
