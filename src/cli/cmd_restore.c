/* bulwark restore */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark restore [OPTIONS] SNAPSHOT --target DIR\n"
"\n"
"Recreate the files of SNAPSHOT ('latest' or a unique prefix of its ID, at\n"
"least 4 hex digits) under DIR, which is created if needed.  Paths keep\n"
"their place: /home/ann/doc is restored to DIR/home/ann/doc.  Contents,\n"
"hard links, symlinks, FIFOs, devices, modes (setuid included), owners,\n"
"times, extended attributes and ACLs are restored.  Existing files are\n"
"never replaced unless --overwrite is given.  No symlink is ever followed\n"
"below DIR.\n"
"\n"
"Damaged or missing data does not stop the restore: each affected file is\n"
"reported with the blob and pack at fault, the missing bytes are left as\n"
"zeros, and the exit code is 3.\n"
"\n"
"Options:\n"
"  -t, --target DIR        where to restore (required)\n"
"  -i, --include PATTERN   restore only matching paths, their parents and\n"
"                          everything below them (repeatable)\n"
"  -e, --exclude PATTERN   leave out matching paths and everything below\n"
"                          them (repeatable)\n"
"                          Patterns are shell globs (*, ?, [..]); one with\n"
"                          '/' matches the whole path in the snapshot\n"
"                          ('/usr/share/doc/*', where '*' also crosses '/'),\n"
"                          one without matches names ('*.txt')\n"
"      --path SUBPATH      restore only this path of the snapshot\n"
"      --host NAME         with 'latest': newest snapshot of host NAME\n"
"      --verify            read the restored files back and check them\n"
"                          against the snapshot\n"
"      --sparse            leave holes for blocks of zeros (4 KiB aligned)\n"
"      --numeric-owner     use the saved user/group IDs, not their names\n"
"      --no-owner          do not change owners (the default unless root)\n"
"      --overwrite         replace existing files, links and special files\n"
"      --threads N         worker threads (default: CPUs)\n"
"      --json              print the summary (and errors) as JSON\n"
"\n"
"Exit codes: 0 all restored, 3 restored but some files or metadata could\n"
"not be (see the errors), 1 nothing restored (no such snapshot, unusable\n"
"target, ...), 2 bad command line.\n");
}

static int add_pattern(char ***v, size_t *n, size_t *cap, const char *p)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		void *nv = realloc(*v, nc * sizeof **v);
		if (!nv)
			return BW_ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = (char *)p;
	return 0;
}

static void print_summary(const struct bw_restore_stats *st, double secs,
                          const char *target, int verify)
{
	if (g.json) {
		json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f}",
		                      "message_type", "summary", "target", target,
		                      "files", (json_int_t)st->files,
		                      "dirs", (json_int_t)st->dirs,
		                      "others", (json_int_t)st->others,
		                      "bytes", (json_int_t)st->bytes,
		                      "errors", (json_int_t)st->errors,
		                      "seconds", secs);
		if (j && verify)
			json_object_set_new(j, "verified", json_integer((json_int_t)st->verified));
		cli_json_print(j);
		return;
	}
	if (g.quiet)
		return;
	char b[32], rate[32];
	bw_fmt_bytes(st->bytes, b);
	bw_fmt_bytes(secs > 0 ? (uint64_t)((double)st->bytes / secs) : 0, rate);
	printf("Restored:    %llu files, %llu dirs, %llu others, %s in %.2fs (%s/s)\n",
	       (unsigned long long)st->files, (unsigned long long)st->dirs,
	       (unsigned long long)st->others, b, secs, rate);
	if (verify)
		printf("Verified:    %llu files\n", (unsigned long long)st->verified);
	if (st->errors)
		printf("Errors:      %llu (see above)\n", (unsigned long long)st->errors);
}

static int parse_args(int argc, char **argv, struct bw_restore_opts *o,
                      const char **snap, const char **host, char ***inc, size_t *ninc,
                      char ***exc, size_t *nexc)
{
	static const struct option opts[] = {
		{"target", required_argument, NULL, 't'},
		{"include", required_argument, NULL, 'i'},
		{"exclude", required_argument, NULL, 'e'},
		{"path", required_argument, NULL, 1},
		{"verify", no_argument, NULL, 2},
		{"sparse", no_argument, NULL, 3},
		{"numeric-owner", no_argument, NULL, 4},
		{"no-owner", no_argument, NULL, 5},
		{"overwrite", no_argument, NULL, 6},
		{"threads", required_argument, NULL, 7},
		{"host", required_argument, NULL, 8},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	size_t capi = 0, cape = 0;
	int c;
	for (;;) {
		/* options may come before and after SNAPSHOT */
		c = cli_getopt(argc, argv, "t:i:e:", opts);
		if (c == -1) {
			if (optind >= argc)
				break;
			if (*snap)
				return cli_usage_error("restore", "give exactly one snapshot ('latest' or an ID)");
			*snap = argv[optind++];
			continue;
		}
		switch (c) {
		case 't': o->target = optarg; break;
		case 'i':
			if (add_pattern(inc, ninc, &capi, optarg))
				return cli_fail("restore", BW_ENOMEM);
			break;
		case 'e':
			if (add_pattern(exc, nexc, &cape, optarg))
				return cli_fail("restore", BW_ENOMEM);
			break;
		case 1: o->subpath = optarg; break;
		case 2: o->verify = 1; break;
		case 3: o->sparse = 1; break;
		case 4: o->numeric_owner = 1; break;
		case 5: o->no_owner = 1; break;
		case 6: o->overwrite = 1; break;
		case 7: {
			char *end;
			long t = strtol(optarg, &end, 10);
			if (*end || t < 1 || t > 256)
				return cli_usage_error("restore", "--threads takes 1-256");
			o->threads = (int)t;
			break;
		}
		case 8: *host = optarg; break;
		case 'h': help(); return -1;
		default: return cli_usage_error("restore", "unknown option");
		}
	}
	if (!*snap)
		return cli_usage_error("restore", "give exactly one snapshot ('latest' or an ID)");
	if (!o->target || !*o->target)
		return cli_usage_error("restore", "--target DIR is required");
	return 0;
}

int cmd_restore(int argc, char **argv)
{
	struct bw_restore_opts o;
	struct bw_restore_stats st;
	struct bw_snapshot s;
	struct bw_repo *repo = NULL;
	char **inc = NULL, **exc = NULL;
	size_t ninc = 0, nexc = 0;
	const char *host = NULL, *snap = NULL;
	int code, r;
	memset(&o, 0, sizeof o);
	memset(&s, 0, sizeof s);
	if ((code = parse_args(argc, argv, &o, &snap, &host, &inc, &ninc, &exc, &nexc))) {
		code = code < 0 ? EXIT_OK : code;
		goto out;
	}
	o.includes = (const char *const *)inc;
	o.nincludes = ninc;
	o.excludes = (const char *const *)exc;
	o.nexcludes = nexc;
	if ((r = cli_open_repo("restore", &repo)) ||
	    (r = bw_repo_find_snapshot(repo, snap, host, NULL, &s))) {
		code = cli_fail("restore", r);
		goto out;
	}
	struct cli_progress pr;
	cli_progress_init(&pr, "restored");
	struct cli_errlog el = {g.json, pr.active};
	if (pr.active) {
		o.progress = cli_progress_cb;
		o.progress_arg = &pr;
	}
	o.on_error = cli_on_error;
	o.error_arg = &el;
	double t0 = bw_mono_s();
	r = bw_restore(repo, &s, &o, &st);
	cli_progress_done(&pr);
	if (r && r != BW_EDAMAGED) {
		code = cli_fail("restore", r);
		goto out;
	}
	print_summary(&st, bw_mono_s() - t0, o.target, o.verify);
	if (r == BW_EDAMAGED && !g.json)
		fprintf(stderr, "bulwark restore: %s\n", bw_err_msg());
	code = r || st.errors ? EXIT_PARTIAL : EXIT_OK;
out:
	bw_snapshot_release(&s);
	bw_repo_close(repo);
	free(inc);
	free(exc);
	return code;
}
