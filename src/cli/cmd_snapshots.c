/* bulwark snapshots */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark snapshots [OPTIONS] [SNAPSHOT-ID...]\n"
"\n"
"List the repository's snapshots, oldest first.\n"
"\n"
"Options:\n"
"  --host HOST     only snapshots from HOST\n"
"  --tag TAG       only snapshots carrying TAG (repeatable: any of them)\n"
"  --path PATH     only snapshots that include PATH\n"
"  --latest N      only the newest N (after filtering)\n"
"  --json          one JSON array of snapshot objects\n");
}

static int match(const struct bw_snapshot *s, const char *host,
                 char **tags, int ntags, const char *path, char **ids, int nids)
{
	if (host && strcmp(s->hostname, host))
		return 0;
	if (ntags) {
		int any = 0;
		for (int i = 0; i < ntags && !any; i++)
			any = bw_snapshot_has_tag(s, tags[i]);
		if (!any)
			return 0;
	}
	if (path) {
		int any = 0;
		for (size_t i = 0; i < s->npaths && !any; i++)
			any = !strcmp(s->paths[i], path);
		if (!any)
			return 0;
	}
	if (nids) {
		char hex[2 * BW_ID_LEN + 1];
		bw_id_hex(&s->id, hex);
		int any = 0;
		for (int i = 0; i < nids && !any; i++)
			any = !strncmp(hex, ids[i], strlen(ids[i]));
		if (!any)
			return 0;
	}
	return 1;
}

int cmd_snapshots(int argc, char **argv)
{
	static const struct option opts[] = {
		{"host", required_argument, NULL, 1},
		{"tag", required_argument, NULL, 2},
		{"path", required_argument, NULL, 3},
		{"latest", required_argument, NULL, 4},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *host = NULL, *path = NULL;
	char *tags[64];
	int ntags = 0, c;
	long latest = 0;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 1: host = optarg; break;
		case 2:
			if (ntags < 64)
				tags[ntags++] = optarg;
			break;
		case 3: path = optarg; break;
		case 4: {
			char *end;
			latest = strtol(optarg, &end, 10);
			if (*end || latest < 1)
				return cli_usage_error("snapshots", "--latest takes a positive number");
			break;
		}
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("snapshots", "unknown option");
		}
	}
	struct bw_repo *repo;
	int r = cli_open_repo("snapshots", &repo);
	if (r)
		return cli_fail("snapshots", r);
	struct bw_snapshot *v;
	size_t n;
	if ((r = bw_repo_snapshots(repo, &v, &n))) {
		bw_repo_close(repo);
		return cli_fail("snapshots", r);
	}
	int *sel = calloc(n ? n : 1, sizeof *sel);
	size_t nsel = 0;
	for (size_t i = 0; i < n; i++)
		if ((sel[i] = match(&v[i], host, tags, ntags, path, argv + optind, argc - optind)))
			nsel++;
	if (latest)
		for (size_t i = 0; i < n && nsel > (size_t)latest; i++)
			if (sel[i]) {
				sel[i] = 0;
				nsel--;
			}
	if (g.json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			if (sel[i])
				json_array_append_new(a, cli_json_snapshot(&v[i]));
		cli_json_print(a);
	} else {
		printf("%-8s  %-19s  %-16s  %-20s  %10s  %s\n", "ID", "Time", "Host", "Tags", "Size", "Paths");
		printf("--------------------------------------------------------------------------------------------\n");
		for (size_t i = 0; i < n; i++) {
			if (!sel[i])
				continue;
			char sh[9], ts[40], sz[32], tagbuf[256] = "";
			size_t tl = 0;
			cli_short_id(&v[i].id, sh);
			bw_time_format_local(v[i].time_ns, ts);
			bw_fmt_bytes(v[i].summary.total_bytes, sz);
			for (size_t t = 0; t < v[i].ntags && tl < sizeof tagbuf - 2; t++)
				tl += (size_t)snprintf(tagbuf + tl, sizeof tagbuf - tl, "%s%s", t ? "," : "", v[i].tags[t]);
			printf("%-8s  %-19s  %-16s  %-20s  %10s  ", sh, ts, v[i].hostname, tagbuf, sz);
			for (size_t p = 0; p < v[i].npaths; p++)
				printf("%s%s", p ? ", " : "", v[i].paths[p]);
			printf("\n");
		}
		printf("--------------------------------------------------------------------------------------------\n");
		printf("%zu snapshot%s\n", nsel, nsel == 1 ? "" : "s");
	}
	free(sel);
	bw_snapshots_free(v, n);
	bw_repo_close(repo);
	return EXIT_OK;
}
