/* bulwark check */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark check [--read-data | --read-data-subset=N/M] [--json]\n"
"\n"
"Verify the repository.  Without options the structure is checked: every\n"
"index file decrypts and decodes, every pack the index names exists and its\n"
"header lists exactly the indexed blobs, every snapshot decodes, every tree\n"
"reachable from a snapshot can be read and every data blob a file needs is\n"
"indexed.  This reads only pack headers, indexes, snapshots and trees.\n"
"\n"
"Packs that no index names are counted as \"unreferenced\": an interrupted\n"
"backup leaves them, they are not an error, and `bulwark prune` removes them.\n"
"\n"
"check never modifies the repository and can run while backups run.\n"
"\n"
"Options:\n"
"      --read-data            also read every pack whole: its bytes must hash\n"
"                             to its name and every blob must decrypt,\n"
"                             decompress and hash to its ID\n"
"      --read-data-subset=N/M read only the packs of bucket N of M (by the\n"
"                             first byte of the pack ID); running N = 1..M\n"
"                             on successive days reads everything once\n"
"      --json                 one JSON object per problem, then a summary\n"
"\n"
"Each problem is printed on stderr as \"OBJECT ID: what is wrong\".\n"
"\n"
"Exit codes: 0 no problem found, 3 damage found (listed), 1 check failed.\n");
}

static void on_problem(const char *what, const char *msg, void *arg)
{
	const struct cli_progress *pr = arg;
	if (g.json) {
		json_t *j = json_pack("{s:s,s:s,s:s}", "message_type", "problem",
		                      "object", what, "message", msg);
		cli_json_print(j);
		fflush(stdout);
	} else {
		fprintf(stderr, "%s%s: %s\n", pr->active ? "\r\033[K" : "", what, msg);
	}
}

static int parse_subset(const char *s, uint32_t *n, uint32_t *m)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10);
	if (end == s || *end != '/')
		return -1;
	const char *t = end + 1;
	unsigned long b = strtoul(t, &end, 10);
	if (end == t || *end || a < 1 || b < 1 || a > b || b > 256)
		return -1;
	*n = (uint32_t)a;
	*m = (uint32_t)b;
	return 0;
}

static void summary(const struct bw_check_opts *o, const struct bw_check_stats *st)
{
	if (g.json) {
		json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}",
		                      "message_type", "summary",
		                      "packs", (json_int_t)st->packs,
		                      "unreferenced_packs", (json_int_t)st->unreferenced_packs,
		                      "snapshots", (json_int_t)st->snapshots,
		                      "trees", (json_int_t)st->trees,
		                      "blobs", (json_int_t)st->blobs,
		                      "packs_read", (json_int_t)st->packs_read,
		                      "problems", (json_int_t)st->problems,
		                      "read_data", o->read_data);
		cli_json_print(j);
		return;
	}
	if (g.quiet && !st->problems)
		return;
	printf("%llu snapshots, %llu trees, %llu blobs in %llu packs",
	       (unsigned long long)st->snapshots, (unsigned long long)st->trees,
	       (unsigned long long)st->blobs, (unsigned long long)st->packs);
	if (st->unreferenced_packs)
		printf(" (+%llu unreferenced, removed by prune)",
		       (unsigned long long)st->unreferenced_packs);
	printf("\n");
	if (o->read_data)
		printf("%llu packs read%s\n", (unsigned long long)st->packs_read,
		       o->subset_m ? " (subset)" : "");
	if (st->problems)
		printf("%llu problem%s found (listed above)\n",
		       (unsigned long long)st->problems, st->problems == 1 ? "" : "s");
	else
		printf("no problems found\n");
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"read-data", no_argument, NULL, 1},
		{"read-data-subset", required_argument, NULL, 2},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bw_check_opts o;
	struct bw_check_stats st;
	int c, r;
	memset(&o, 0, sizeof o);
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 1: o.read_data = 1; break;
		case 2:
			if (parse_subset(optarg, &o.subset_n, &o.subset_m))
				return cli_usage_error("check", "--read-data-subset takes N/M with 1 <= N <= M <= 256");
			o.read_data = 1;
			break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("check", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
	struct bw_repo *repo;
	if ((r = cli_open_repo("check", &repo)))
		return cli_fail("check", r);
	struct cli_progress pr;
	cli_progress_init(&pr, "checked");
	if (pr.active) {
		o.progress = cli_progress_cb;
		o.progress_arg = &pr;
	}
	o.on_problem = on_problem;
	o.problem_arg = &pr;
	r = bw_check(repo, &o, &st);
	cli_progress_done(&pr);
	bw_repo_close(repo);
	if (r && r != BW_EDAMAGED)
		return cli_fail("check", r);
	summary(&o, &st);
	return r ? EXIT_PARTIAL : EXIT_OK;
}
