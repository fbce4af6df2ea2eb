/* bulwark ls: list the entries of a snapshot. */
#include "treewalk.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark ls [OPTIONS] SNAPSHOT [PATH...]\n"
"\n"
"List the files and directories saved in SNAPSHOT, one full path per line\n"
"(paths inside a snapshot are absolute: /home/ann/notes.txt).  SNAPSHOT is\n"
"'latest' or a unique prefix (4 or more hex digits) of a snapshot ID.\n"
"\n"
"Without PATH the whole snapshot is listed, recursively.  A PATH that names\n"
"a directory lists that directory's entries (all below it with\n"
"--recursive); a PATH that names anything else lists just that entry.\n"
"Bytes in names that are not printable are shown as \\xNN.\n"
"\n"
"Options:\n"
"  -l, --long        mode, owner, group, size, modification time (local),\n"
"                    path, and '-> target' for symbolic links\n"
"  -R, --recursive   list everything below each PATH (the default when no\n"
"                    PATH is given)\n"
"      --host HOST   with 'latest': the newest snapshot from HOST\n"
"      --path P      with 'latest': the newest snapshot that saved P\n"
"      --json        one JSON object per line: first the snapshot\n"
"                    (message_type \"snapshot\"), then one per entry\n"
"                    (message_type \"node\": name, type, path, size, mode,\n"
"                    permissions, uid, gid, user, group, mtime, atime,\n"
"                    ctime, inode, links, target, blobs, xattrs)\n"
"\n"
"Exit codes: 0 listed, 1 error (e.g. a PATH not in the snapshot), 2 bad\n"
"command line, 10/11 no repository / wrong passphrase.\n");
}

struct ls {
	int longfmt;
	int recursive;
};

static void show(const struct ls *l, const char *path, size_t len,
                 const struct bw_node *n)
{
	if (g.json) {
		cli_json_print(cli_json_node(path, len, n));
	} else if (l->longfmt) {
		cli_print_node_long(stdout, path, len, n);
	} else {
		cli_print_escaped(stdout, path, len);
		fputc('\n', stdout);
	}
}

static int on_entry(void *arg, const struct cli_walk_ent *e)
{
	const struct ls *l = arg;
	show(l, e->path, e->path_len, e->node);
	if (ferror(stdout))
		return bw_errf(BW_EIO, "cannot write the listing to standard output");
	return l->recursive ? 0 : CLI_WALK_SKIP;
}

static int list_path(struct bw_repo *repo, const struct bw_snapshot *s,
                     const struct ls *l, const char *path)
{
	struct cli_lookup lk;
	int rc = cli_lookup_path(repo, &s->tree, path, &lk);
	if (!rc) {
		if (lk.is_dir)
			rc = cli_walk(repo, &lk.dir, lk.path, on_entry, (void *)l);
		else
			show(l, lk.path, strlen(lk.path), lk.node);
	}
	cli_lookup_release(&lk);
	return rc;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{"long", no_argument, NULL, 'l'},
		{"recursive", no_argument, NULL, 'R'},
		{"host", required_argument, NULL, 1},
		{"path", required_argument, NULL, 2},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ls l = {0, 0};
	const char *host = NULL, *fpath = NULL;
	struct bw_repo *repo = NULL;
	struct bw_snapshot s;
	int c, r, have_snap = 0;
	while ((c = cli_getopt(argc, argv, "lR", opts)) != -1) {
		switch (c) {
		case 'l': l.longfmt = 1; break;
		case 'R': l.recursive = 1; break;
		case 1: host = optarg; break;
		case 2: fpath = optarg; break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("ls", "unknown option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("ls", "give a snapshot ID or 'latest'");
	const char *spec = argv[optind++];
	if (optind >= argc)
		l.recursive = 1;
	if ((r = cli_open_repo("ls", &repo)))
		goto out;
	if ((r = bw_repo_find_snapshot(repo, spec, host, fpath, &s)))
		goto out;
	have_snap = 1;
	if (g.json) {
		json_t *j = cli_json_snapshot(&s);
		json_object_set_new(j, "message_type", json_string("snapshot"));
		cli_json_print(j);
	}
	if (optind >= argc)
		r = list_path(repo, &s, &l, "/");
	for (int i = optind; i < argc && !r; i++)
		r = list_path(repo, &s, &l, argv[i]);
	if (!r && fflush(stdout))
		r = bw_errf(BW_EIO, "cannot write the listing to standard output");
out:
	if (have_snap)
		bw_snapshot_release(&s);
	if (repo)
		bw_repo_close(repo);
	return r ? cli_fail("ls", r) : EXIT_OK;
}
