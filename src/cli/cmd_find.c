/* bulwark find: look for entries by name pattern across snapshots. */
#include "treewalk.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark find [OPTIONS] PATTERN...\n"
"\n"
"Find files, directories and other entries whose name matches any PATTERN,\n"
"in every snapshot (or those given with --snapshot).  Patterns are shell\n"
"globs (*, ?, [...]).  A pattern without '/' is matched against the entry's\n"
"name; one with '/' against its whole path inside the snapshot, where '*'\n"
"also matches '/' (so '/home/*.pdf' finds PDF files at any depth below\n"
"/home).  Quote patterns so the shell does not expand them.\n"
"\n"
"Each match is printed as: snapshot ID, modification time (local), size,\n"
"path.  Bytes in names that are not printable are shown as \\xNN.\n"
"\n"
"Options:\n"
"      --snapshot ID   search only this snapshot ('latest' or an ID prefix;\n"
"                      repeatable; default: all snapshots)\n"
"      --host HOST     search only snapshots from HOST\n"
"      --name          match every pattern against names only, even if it\n"
"                      contains '/' (such a pattern then matches nothing)\n"
"  -i, --ignore-case   ignore case (ASCII letters)\n"
"      --json          one JSON object per match (message_type \"match\"):\n"
"                      snapshot, short_id, and the entry's fields as in\n"
"                      `bulwark ls --json`\n"
"\n"
"Finding nothing is not an error: the exit code is 0 and, unless --quiet or\n"
"--json, 'no matches' is printed on standard error.\n"
"Exit codes: 0 searched, 1 error, 2 bad command line, 10/11 no repository /\n"
"wrong passphrase.\n");
}

struct find {
	char **pats;
	int npats;
	int name_only;
	int flags;
	const struct bw_snapshot *snap;
	uint64_t matches;
};

static int matches(const struct find *f, const struct cli_walk_ent *e)
{
	const char *name = e->path + e->path_len - e->node->name_len;
	for (int i = 0; i < f->npats; i++) {
		const char *p = f->pats[i];
		int path_pat = !f->name_only && strchr(p, '/');
		if (!fnmatch(p, path_pat ? e->path : name, f->flags))
			return 1;
	}
	return 0;
}

static int on_entry(void *arg, const struct cli_walk_ent *e)
{
	struct find *f = arg;
	if (!matches(f, e))
		return 0;
	f->matches++;
	char sh[9];
	cli_short_id(&f->snap->id, sh);
	if (g.json) {
		char hex[2 * BW_ID_LEN + 1];
		json_t *j = cli_json_node(e->path, e->path_len, e->node);
		bw_id_hex(&f->snap->id, hex);
		json_object_set_new(j, "message_type", json_string("match"));
		json_object_set_new(j, "snapshot", json_string(hex));
		json_object_set_new(j, "short_id", json_string(sh));
		cli_json_print(j);
	} else {
		char mt[40];
		const struct bw_node *n = e->node;
		bw_time_format_local(n->mtime_ns, mt);
		printf("%s  %s  %10llu  ", sh, mt,
		       (unsigned long long)(n->type == BW_NODE_FILE ? n->size : 0));
		cli_print_escaped(stdout, e->path, e->path_len);
		if (n->type == BW_NODE_DIR)
			fputc('/', stdout);
		fputc('\n', stdout);
	}
	if (ferror(stdout))
		return bw_errf(BW_EIO, "cannot write to standard output");
	return 0;
}

/* The snapshots to search: those named, or all (optionally from host). */
static int pick(struct bw_repo *repo, char **ids, int nids, const char *host,
                struct bw_snapshot **v, size_t *n)
{
	int rc = 0;
	if (!nids) {
		if ((rc = bw_repo_snapshots(repo, v, n)))
			return rc;
	} else {
		if (!(*v = calloc((size_t)nids, sizeof **v)))
			return BW_ENOMEM;
		for (*n = 0; *n < (size_t)nids && !rc; ) {
			rc = bw_repo_find_snapshot(repo, ids[*n], host, NULL, &(*v)[*n]);
			if (!rc)
				(*n)++;
		}
	}
	if (host) {
		size_t k = 0;
		for (size_t i = 0; i < *n; i++) {
			if (!strcmp((*v)[i].hostname, host))
				(*v)[k++] = (*v)[i];
			else
				bw_snapshot_release(&(*v)[i]);
		}
		*n = k;
	}
	return rc;
}

int cmd_find(int argc, char **argv)
{
	static const struct option opts[] = {
		{"snapshot", required_argument, NULL, 1},
		{"host", required_argument, NULL, 2},
		{"name", no_argument, NULL, 3},
		{"ignore-case", no_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct find f;
	struct bw_repo *repo = NULL;
	struct bw_snapshot *v = NULL;
	size_t n = 0;
	const char *host = NULL;
	char **ids = NULL;
	int nids = 0, c, r;
	memset(&f, 0, sizeof f);
	if (!(ids = calloc((size_t)argc, sizeof *ids)))
		return cli_fail("find", BW_ENOMEM);
	while ((c = cli_getopt(argc, argv, "i", opts)) != -1) {
		switch (c) {
		case 1: ids[nids++] = optarg; break;
		case 2: host = optarg; break;
		case 3: f.name_only = 1; break;
		case 'i': f.flags |= FNM_CASEFOLD; break;
		case 'h': help(); free(ids); return EXIT_OK;
		default: free(ids); return cli_usage_error("find", "unknown option");
		}
	}
	if (optind >= argc) {
		free(ids);
		return cli_usage_error("find", "give at least one PATTERN");
	}
	f.pats = argv + optind;
	f.npats = argc - optind;
	if ((r = cli_open_repo("find", &repo)))
		goto out;
	if ((r = pick(repo, ids, nids, host, &v, &n)))
		goto out;
	for (size_t i = 0; i < n && !r; i++) {
		f.snap = &v[i];
		r = cli_walk(repo, &v[i].tree, "", on_entry, &f);
	}
	if (!r && fflush(stdout))
		r = bw_errf(BW_EIO, "cannot write to standard output");
	if (!r && !f.matches && !g.quiet && !g.json)
		fprintf(stderr, "no matches in %zu snapshot%s\n", n, n == 1 ? "" : "s");
out:
	bw_snapshots_free(v, n);
	if (repo)
		bw_repo_close(repo);
	free(ids);
	return r ? cli_fail("find", r) : EXIT_OK;
}
