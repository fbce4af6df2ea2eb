/* bulwark backup */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark backup [OPTIONS] PATH...\n"
"       bulwark backup [OPTIONS] --stdin [--stdin-filename NAME]\n"
"\n"
"Save PATHs (files or directories) as a new snapshot.  Files unchanged since\n"
"the parent snapshot (same host and paths; same inode, size, mtime, ctime)\n"
"are not read again.  Unreadable files are reported and left out; the\n"
"snapshot is still made and the exit code is 3.\n"
"\n"
"Options:\n"
"  -e, --exclude PATTERN   leave out matching files (repeatable). A pattern\n"
"                          without '/' matches names, one with '/' matches\n"
"                          whole paths; shell globs (*, ?, [..]); '*' also\n"
"                          crosses '/' in path patterns\n"
"      --exclude-file F    read patterns from F, one per line ('#' comments)\n"
"  -x, --one-file-system   do not cross file-system boundaries\n"
"      --tag TAG           tag the snapshot (repeatable)\n"
"      --host NAME         record NAME as the host (default: this host)\n"
"      --parent ID         compare with this snapshot instead of the latest\n"
"      --force             read every file, ignoring the parent\n"
"  -n, --dry-run           read and chunk, but store nothing\n"
"      --stdin             back up standard input as one file\n"
"      --stdin-filename N  its name in the snapshot (default 'stdin')\n"
"      --threads N         worker threads (default: CPUs)\n"
"      --json              print the summary as JSON\n"
"\n"
"Exit codes: 0 all saved, 3 snapshot saved but some files could not be read,\n"
"1 no snapshot saved.\n");
}

static int read_patterns(const char *file, char ***v, size_t *n, size_t *cap)
{
	struct bw_buf b;
	bw_buf_init(&b, 16 << 20);
	int r = bw_file_read(file, 16 << 20, &b);
	if (r) {
		bw_buf_release(&b);
		return r;
	}
	char *s = (char *)bw_buf_cstr(&b);
	while (*s) {
		char *e = strchr(s, '\n');
		if (e)
			*e = 0;
		size_t l = strlen(s);
		while (l && (s[l - 1] == '\r' || s[l - 1] == ' '))
			s[--l] = 0;
		if (l && s[0] != '#') {
			if (*n == *cap) {
				*cap = *cap ? *cap * 2 : 16;
				*v = realloc(*v, *cap * sizeof **v);
			}
			(*v)[(*n)++] = strdup(s);
		}
		if (!e)
			break;
		s = e + 1;
	}
	bw_buf_release(&b);
	return 0;
}

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		{"exclude", required_argument, NULL, 'e'},
		{"exclude-file", required_argument, NULL, 1},
		{"one-file-system", no_argument, NULL, 'x'},
		{"tag", required_argument, NULL, 2},
		{"host", required_argument, NULL, 3},
		{"parent", required_argument, NULL, 4},
		{"force", no_argument, NULL, 5},
		{"dry-run", no_argument, NULL, 'n'},
		{"stdin", no_argument, NULL, 6},
		{"stdin-filename", required_argument, NULL, 7},
		{"threads", required_argument, NULL, 8},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bw_backup_opts o;
	char **ex = NULL, **tags = NULL, **paths = NULL;
	size_t nex = 0, capex = 0, ntags = 0, npaths = 0;
	const char *parent = NULL;
	struct bw_repo *repo = NULL;
	struct bw_snapshot s;
	int c, r, code = EXIT_OK;
	memset(&o, 0, sizeof o);
	memset(&s, 0, sizeof s);
	tags = calloc((size_t)argc + 1, sizeof *tags);
	paths = calloc((size_t)argc + 1, sizeof *paths);
	for (int end_of_opts = 0;;) {
		/* options may come before and after the paths; after "--"
		 * everything is a path */
		int before = optind;
		c = end_of_opts ? -1 : cli_getopt(argc, argv, "e:xn", opts);
		if (c == -1) {
			if (optind > before && !strcmp(argv[optind - 1], "--"))
				end_of_opts = 1;
			if (optind >= argc)
				break;
			paths[npaths++] = argv[optind++];
			continue;
		}
		switch (c) {
		case 'e':
			if (nex == capex) {
				capex = capex ? capex * 2 : 16;
				ex = realloc(ex, capex * sizeof *ex);
			}
			ex[nex++] = strdup(optarg);
			break;
		case 1:
			if ((r = read_patterns(optarg, &ex, &nex, &capex))) {
				code = cli_fail("backup", r);
				goto out;
			}
			break;
		case 'x': o.one_file_system = 1; break;
		case 2: tags[ntags++] = optarg; break;
		case 3: o.hostname = optarg; break;
		case 4: parent = optarg; break;
		case 5: o.force = 1; break;
		case 'n': o.dry_run = 1; break;
		case 6: o.stdin_mode = 1; break;
		case 7: o.stdin_name = optarg; break;
		case 8: {
			char *end;
			long t = strtol(optarg, &end, 10);
			if (*end || t < 1 || t > 256) {
				code = cli_usage_error("backup", "--threads takes 1-256");
				goto out;
			}
			o.threads = (int)t;
			break;
		}
		case 'h': help(); goto out;
		default:
			code = cli_usage_error("backup", "unknown option");
			goto out;
		}
	}
	if (!o.stdin_mode && !npaths) {
		code = cli_usage_error("backup", "nothing to back up: give one or more paths");
		goto out;
	}
	if (o.stdin_mode && npaths) {
		code = cli_usage_error("backup", "--stdin takes no paths");
		goto out;
	}
	o.paths = (const char *const *)paths;
	o.npaths = npaths;
	o.excludes = (const char *const *)ex;
	o.nexcludes = nex;
	o.tags = (const char *const *)tags;
	o.ntags = ntags;

	if ((r = cli_open_repo("backup", &repo))) {
		code = cli_fail("backup", r);
		goto out;
	}
	struct bw_id pid;
	struct bw_snapshot ps;
	if (parent) {
		if ((r = bw_repo_find_snapshot(repo, parent, NULL, NULL, &ps))) {
			code = cli_fail("backup", r);
			goto out;
		}
		pid = ps.id;
		bw_snapshot_release(&ps);
		o.parent = &pid;
	}
	struct cli_progress pr;
	cli_progress_init(&pr, o.dry_run ? "checked" : "saved");
	struct cli_errlog el = {g.json, pr.active};
	if (pr.active) {
		o.progress = cli_progress_cb;
		o.progress_arg = &pr;
	}
	o.on_error = cli_on_error;
	o.error_arg = &el;
	r = bw_backup(repo, &o, &s);
	cli_progress_done(&pr);
	if (r) {
		code = cli_fail("backup", r);
		goto out;
	}
	const struct bw_snapshot_summary *m = &s.summary;
	double secs = (double)(m->end_ns - m->start_ns) / 1e9;
	if (g.json) {
		json_t *j = cli_json_snapshot(&s);
		json_object_set_new(j, "message_type", json_string("summary"));
		json_object_set_new(j, "dry_run", json_boolean(o.dry_run));
		json_object_set_new(j, "dirs_new", json_integer((json_int_t)m->dirs_new));
		json_object_set_new(j, "dirs_changed", json_integer((json_int_t)m->dirs_changed));
		json_object_set_new(j, "dirs_unmodified", json_integer((json_int_t)m->dirs_unmodified));
		json_object_set_new(j, "data_blobs", json_integer((json_int_t)m->data_blobs));
		json_object_set_new(j, "tree_blobs", json_integer((json_int_t)m->tree_blobs));
		json_object_set_new(j, "seconds", json_real(secs));
		cli_json_print(j);
	} else if (!g.quiet) {
		char tb[32], da[32], dp[32], sh[9];
		bw_fmt_bytes(m->total_bytes, tb);
		bw_fmt_bytes(m->data_added, da);
		bw_fmt_bytes(m->data_added_packed, dp);
		cli_short_id(&s.id, sh);
		printf("Files:       %llu new, %llu changed, %llu unmodified\n",
		       (unsigned long long)m->files_new, (unsigned long long)m->files_changed,
		       (unsigned long long)m->files_unmodified);
		printf("Dirs:        %llu new, %llu changed, %llu unmodified\n",
		       (unsigned long long)m->dirs_new, (unsigned long long)m->dirs_changed,
		       (unsigned long long)m->dirs_unmodified);
		printf("Added:       %s (%s stored)\n", da, dp);
		printf("Processed:   %llu files, %s in %.2fs\n",
		       (unsigned long long)m->total_files, tb, secs);
		if (m->errors)
			printf("Errors:      %llu files could not be read (see above)\n",
			       (unsigned long long)m->errors);
		if (o.dry_run)
			printf("Dry run: nothing was stored\n");
		else
			printf("snapshot %s saved\n", sh);
	}
	code = m->errors ? EXIT_PARTIAL : EXIT_OK;
out:
	bw_snapshot_release(&s);
	bw_repo_close(repo);
	for (size_t i = 0; i < nex; i++)
		free(ex[i]);
	free(ex);
	free(tags);
	free(paths);
	return code;
}
