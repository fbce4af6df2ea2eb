/* bulwark forget */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark forget [POLICY] [FILTERS] [--group-by G] [--dry-run] [--prune]\n"
"       bulwark forget [--dry-run] [--prune] SNAPSHOT-ID...\n"
"\n"
"Remove snapshots, either those named or those a retention policy does not\n"
"keep.  Only snapshot objects are removed; run `bulwark prune` (or pass\n"
"--prune) to delete the data no remaining snapshot needs.\n"
"\n"
"Snapshots are grouped (by default by host and paths) and the policy is\n"
"applied to each group separately.  A snapshot is kept if any rule keeps it.\n"
"\n"
"Policy:\n"
"      --keep-last N       the N newest snapshots\n"
"      --keep-hourly N     the newest snapshot of each of the last N hours\n"
"      --keep-daily N      ... days          (that have snapshots)\n"
"      --keep-weekly N     ... ISO weeks\n"
"      --keep-monthly N    ... months\n"
"      --keep-yearly N     ... years         (N may be 'unlimited')\n"
"      --keep-within D     every snapshot less than D older than the newest\n"
"                          one, e.g. 1y2m3d4h (y = 365 days, m = 30 days)\n"
"      --keep-tag TAG      every snapshot carrying TAG (repeatable)\n"
"Filters (only matching snapshots are considered):\n"
"      --host HOST         made on HOST\n"
"      --tag TAG           carrying TAG (repeatable: any of them)\n"
"      --path PATH         including PATH (repeatable: all of them)\n"
"Other options:\n"
"      --group-by G        host,paths (default), host, paths or none\n"
"  -n, --dry-run           show what would be removed; change nothing\n"
"      --prune             run `bulwark prune` afterwards\n"
"      --json              print the groups as JSON\n"
"\n"
"Time buckets (hours, days, ...) use local time.  With no policy and no\n"
"snapshot IDs, forget refuses to do anything.\n"
"\n"
"Exit codes: 0 done, 1 failure, 2 bad command line, 3 some snapshots could\n"
"not be removed.\n");
}

int cli_parse_duration(const char *s, int64_t *ns)
{
	static const struct { const char *u; int64_t secs; } units[] = {
		{"min", 60}, {"y", 365 * 86400LL}, {"m", 30 * 86400LL},
		{"w", 7 * 86400LL}, {"d", 86400}, {"h", 3600}, {"s", 1},
	};
	int64_t total = 0;
	if (!*s)
		return BW_EINVAL;
	while (*s) {
		char *end;
		long long v = strtoll(s, &end, 10);
		size_t k;
		if (end == s || v < 0 || v > 100000)
			return BW_EINVAL;
		for (k = 0; k < sizeof units / sizeof *units; k++)
			if (!strncmp(end, units[k].u, strlen(units[k].u)))
				break;
		if (k == sizeof units / sizeof *units)
			return BW_EINVAL;
		total += (int64_t)v * units[k].secs;
		s = end + strlen(units[k].u);
	}
	*ns = total * 1000000000;
	return 0;
}

struct fopts {
	struct bw_forget_policy pol;
	const char *host;
	char **tags, **paths, **keep_tags;
	size_t ntags, npaths;
	int by_host, by_paths;
	int dry_run, prune;
};

static int match(const struct fopts *f, const struct bw_snapshot *s)
{
	if (f->host && strcmp(s->hostname, f->host))
		return 0;
	if (f->ntags) {
		int any = 0;
		for (size_t i = 0; i < f->ntags && !any; i++)
			any = bw_snapshot_has_tag(s, f->tags[i]);
		if (!any)
			return 0;
	}
	for (size_t i = 0; i < f->npaths; i++) {
		int has = 0;
		for (size_t k = 0; k < s->npaths && !has; k++)
			has = !strcmp(s->paths[k], f->paths[i]);
		if (!has)
			return 0;
	}
	return 1;
}

static int same_group(const struct fopts *f, const struct bw_snapshot *a,
                      const struct bw_snapshot *b)
{
	if (f->by_host && strcmp(a->hostname, b->hostname))
		return 0;
	if (f->by_paths) {
		if (a->npaths != b->npaths)
			return 0;
		for (size_t i = 0; i < a->npaths; i++)
			if (strcmp(a->paths[i], b->paths[i]))
				return 0;
	}
	return 1;
}

static void print_group(const struct fopts *f, const struct bw_snapshot *const *g_,
                        size_t n, const int *keep, char (*why)[64], json_t *out)
{
	json_t *jk = json_array(), *jr = json_array();
	if (!g.json && !g.quiet && (f->by_host || f->by_paths)) {
		printf("\n");
		if (f->by_host)
			printf("host %s  ", g_[0]->hostname);
		if (f->by_paths) {
			printf("paths ");
			for (size_t i = 0; i < g_[0]->npaths; i++)
				printf("%s%s", i ? ", " : "", g_[0]->paths[i]);
		}
		printf("\n");
	}
	for (int pass = 0; pass < 2; pass++) {
		size_t cnt = 0;
		for (size_t i = 0; i < n; i++)
			cnt += keep[i] == !pass;
		if (!g.json && !g.quiet && cnt)
			printf("%s %zu snapshot%s:\n", pass ? (f->dry_run ? "would remove" : "remove") : "keep",
			       cnt, cnt == 1 ? "" : "s");
		for (size_t i = 0; i < n; i++) {
			if (keep[i] != !pass)
				continue;
			char sh[9], ts[40];
			cli_short_id(&g_[i]->id, sh);
			bw_time_format_local(g_[i]->time_ns, ts);
			if (!g.json && !g.quiet)
				printf("  %-8s  %-19s  %s\n", sh, ts, pass ? "" : why[i]);
			json_t *js = cli_json_snapshot(g_[i]);
			if (!pass)
				json_object_set_new(js, "reasons", json_string(why[i]));
			json_array_append_new(pass ? jr : jk, js);
		}
	}
	json_t *grp = json_pack("{s:o,s:o}", "keep", jk, "remove", jr);
	if (f->by_host)
		json_object_set_new(grp, "host", json_string(g_[0]->hostname));
	if (f->by_paths) {
		json_t *p = json_array();
		for (size_t i = 0; i < g_[0]->npaths; i++)
			json_array_append_new(p, json_string(g_[0]->paths[i]));
		json_object_set_new(grp, "paths", p);
	}
	json_array_append_new(out, grp);
}

static int remove_snap(struct bw_repo *repo, const struct fopts *f,
                       const struct bw_snapshot *s, size_t *failed)
{
	if (f->dry_run)
		return 0;
	int r = bw_repo_remove_snapshot(repo, &s->id);
	if (r) {
		char sh[9];
		cli_short_id(&s->id, sh);
		fprintf(stderr, "bulwark forget: snapshot %s: %s\n", sh,
		        *bw_err_msg() ? bw_err_msg() : bw_strerror(r));
		bw_err_clear();
		(*failed)++;
		if (r == BW_EPERM)
			return r;
	}
	return 0;
}

/* Apply the policy group by group; v is sorted oldest first. */
static int by_policy(struct bw_repo *repo, const struct fopts *f,
                     struct bw_snapshot *v, size_t n, size_t *removed, size_t *failed)
{
	const struct bw_snapshot **grp = calloc(n ? n : 1, sizeof *grp);
	int *done = calloc(n ? n : 1, sizeof *done), *keep = calloc(n ? n : 1, sizeof *keep);
	char (*why)[64] = calloc(n ? n : 1, sizeof *why);
	json_t *out = json_array();
	int r = 0;
	if (!grp || !done || !keep || !why) {
		r = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !r; i++) {
		size_t k = 0;
		if (done[i] || !match(f, &v[i]))
			continue;
		for (size_t j = i; j < n; j++)
			if (!done[j] && match(f, &v[j]) && same_group(f, &v[i], &v[j])) {
				done[j] = 1;
				grp[k++] = &v[j];
			}
		memset(why, 0, k * sizeof *why);
		if ((r = bw_forget_apply(&f->pol, grp, k, keep, why)))
			break;
		print_group(f, grp, k, keep, why, out);
		for (size_t j = 0; j < k && !r; j++)
			if (!keep[j]) {
				r = remove_snap(repo, f, grp[j], failed);
				(*removed)++;
			}
	}
	if (g.json)
		cli_json_print(json_incref(out));
out:
	json_decref(out);
	free(grp);
	free(done);
	free(keep);
	free(why);
	return r;
}

static int by_id(struct bw_repo *repo, const struct fopts *f, struct bw_snapshot *v,
                 size_t n, char **ids, size_t nids, size_t *removed, size_t *failed)
{
	json_t *out = json_array();
	int r = 0;
	for (size_t k = 0; k < nids && !r; k++) {
		size_t hit = 0, which = 0, l = strlen(ids[k]);
		for (size_t i = 0; i < n; i++) {
			char hex[2 * BW_ID_LEN + 1];
			bw_id_hex(&v[i].id, hex);
			if (l >= 4 && !strncmp(hex, ids[k], l)) {
				hit++;
				which = i;
			}
		}
		if (hit != 1) {
			r = bw_errf(BW_EINVAL, "'%s' matches %s snapshot (give at least 4 hex digits)",
			            ids[k], hit ? "more than one" : "no");
			break;
		}
		char sh[9];
		cli_short_id(&v[which].id, sh);
		if (!g.json && !g.quiet)
			printf("%s snapshot %s\n", f->dry_run ? "would remove" : "removed", sh);
		json_array_append_new(out, cli_json_snapshot(&v[which]));
		r = remove_snap(repo, f, &v[which], failed);
		(*removed)++;
	}
	if (g.json && !r)
		cli_json_print(json_pack("{s:o}", "remove", json_incref(out)));
	json_decref(out);
	return r;
}

static int keep_count(const char *s, int *out)
{
	char *end;
	if (!strcmp(s, "unlimited") || !strcmp(s, "-1")) {
		*out = -1;
		return 0;
	}
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < 0 || v > 1000000)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_group_by(const char *s, struct fopts *f)
{
	f->by_host = f->by_paths = 0;
	if (!strcmp(s, "none"))
		return 0;
	if (!strcmp(s, "host") || !strcmp(s, "host,paths") || !strcmp(s, "paths,host"))
		f->by_host = 1;
	if (!strcmp(s, "paths") || !strcmp(s, "host,paths") || !strcmp(s, "paths,host"))
		f->by_paths = 1;
	return f->by_host || f->by_paths ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct fopts *f)
{
	static const struct option opts[] = {
		{"keep-last", required_argument, NULL, 1},
		{"keep-hourly", required_argument, NULL, 2},
		{"keep-daily", required_argument, NULL, 3},
		{"keep-weekly", required_argument, NULL, 4},
		{"keep-monthly", required_argument, NULL, 5},
		{"keep-yearly", required_argument, NULL, 6},
		{"keep-within", required_argument, NULL, 7},
		{"keep-tag", required_argument, NULL, 8},
		{"host", required_argument, NULL, 9},
		{"tag", required_argument, NULL, 10},
		{"path", required_argument, NULL, 11},
		{"group-by", required_argument, NULL, 12},
		{"dry-run", no_argument, NULL, 'n'},
		{"prune", no_argument, NULL, 13},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int *counts[] = {&f->pol.last, &f->pol.hourly, &f->pol.daily, &f->pol.weekly,
	                 &f->pol.monthly, &f->pol.yearly};
	int c;
	while ((c = cli_getopt(argc, argv, "n", opts)) != -1) {
		switch (c) {
		case 1: case 2: case 3: case 4: case 5: case 6:
			if (keep_count(optarg, counts[c - 1]))
				return cli_usage_error("forget", "--keep-* takes a count or 'unlimited'");
			break;
		case 7:
			if (cli_parse_duration(optarg, &f->pol.within_ns) || !f->pol.within_ns)
				return cli_usage_error("forget", "--keep-within takes a duration such as 1y2m3d4h");
			break;
		case 8: f->keep_tags[f->pol.nkeep_tags++] = optarg; break;
		case 9: f->host = optarg; break;
		case 10: f->tags[f->ntags++] = optarg; break;
		case 11: f->paths[f->npaths++] = optarg; break;
		case 12:
			if (parse_group_by(optarg, f))
				return cli_usage_error("forget", "--group-by takes host,paths, host, paths or none");
			break;
		case 'n': f->dry_run = 1; break;
		case 13: f->prune = 1; break;
		case 'h': help(); return -1;
		default: return cli_usage_error("forget", "unknown option");
		}
	}
	f->pol.keep_tags = f->keep_tags;
	return 0;
}

int cmd_forget(int argc, char **argv)
{
	struct fopts f;
	struct bw_repo *repo = NULL;
	struct bw_snapshot *v = NULL;
	size_t n = 0, removed = 0, failed = 0;
	int r, code;
	memset(&f, 0, sizeof f);
	f.by_host = f.by_paths = 1;
	f.tags = calloc((size_t)argc + 1, sizeof *f.tags);
	f.paths = calloc((size_t)argc + 1, sizeof *f.paths);
	f.keep_tags = calloc((size_t)argc + 1, sizeof *f.keep_tags);
	if (!f.tags || !f.paths || !f.keep_tags) {
		code = cli_fail("forget", BW_ENOMEM);
		goto out;
	}
	if ((code = parse_args(argc, argv, &f))) {
		code = code < 0 ? EXIT_OK : code;
		goto out;
	}
	int nids = argc - optind;
	if (nids && !bw_forget_policy_empty(&f.pol)) {
		code = cli_usage_error("forget", "give either snapshot IDs or a policy, not both");
		goto out;
	}
	if (!nids && bw_forget_policy_empty(&f.pol)) {
		code = cli_usage_error("forget", "no policy (--keep-*) and no snapshot IDs: "
		                       "refusing to remove anything");
		goto out;
	}
	if ((r = cli_open_repo("forget", &repo)) || (r = bw_repo_snapshots(repo, &v, &n))) {
		code = cli_fail("forget", r);
		goto out;
	}
	if (nids)
		r = by_id(repo, &f, v, n, argv + optind, (size_t)nids, &removed, &failed);
	else
		r = by_policy(repo, &f, v, n, &removed, &failed);
	if (r) {
		code = cli_fail("forget", r);
		goto out;
	}
	if (!g.json && !g.quiet)
		printf("\n%zu snapshot%s %s\n", removed - failed, removed - failed == 1 ? "" : "s",
		       f.dry_run ? "would be removed" : "removed");
	code = failed ? EXIT_PARTIAL : EXIT_OK;
	if (f.prune && !failed) {
		struct bw_prune_opts po;
		memset(&po, 0, sizeof po);
		po.dry_run = f.dry_run;
		po.max_unused = 0.5;
		code = cli_prune_run(repo, &po);
	}
out:
	bw_snapshots_free(v, n);
	bw_repo_close(repo);
	free(f.tags);
	free(f.paths);
	free(f.keep_tags);
	return code;
}
