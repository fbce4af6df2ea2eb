/* bulwark: the command line.  One file per subcommand; this one holds
 * the dispatch, global options, passphrases and output helpers. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

struct cli g;

static const struct cli_cmd cmds[] = {
	{"init", cmd_init, "create a new repository"},
	{"backup", cmd_backup, "save files and directories as a new snapshot"},
	{"snapshots", cmd_snapshots, "list snapshots"},
	{"ls", cmd_ls, "list files in a snapshot"},
	{"find", cmd_find, "find files in snapshots by name pattern"},
	{"diff", cmd_diff, "show what changed between two snapshots"},
	{"restore", cmd_restore, "restore a snapshot to a directory"},
	{"cat", cmd_cat, "print a raw repository object (for debugging)"},
	{"check", cmd_check, "verify the repository's structure and data"},
	{"forget", cmd_forget, "remove snapshots by policy"},
	{"prune", cmd_prune, "delete data no snapshot needs any more"},
	{"stats", cmd_stats, "show repository and snapshot sizes"},
	{"key", cmd_key, "manage passphrases (add, list, remove, passwd)"},
	{"mount", cmd_mount, "show snapshots as a read-only file system (FUSE)"},
	{"guard", cmd_guard, "stop ransomware and roll damaged files back (fanotify)"},
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: bulwark [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
"\n"
"Cyber protection for managed service providers: encrypted, deduplicated,\n"
"compressed backups into a repository that clients can only add to, and a\n"
"guard that stops ransomware and rolls damaged files back.\n"
"\n"
"Commands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f,
"\n"
"Global options (before or after the command):\n"
"  -r, --repo DIR          repository location (or BULWARK_REPO)\n"
"  -p, --password-file F   read the passphrase from the first line of F\n"
"                          (or BULWARK_PASSWORD_FILE, BULWARK_PASSWORD; else\n"
"                          a prompt on the terminal; never from arguments)\n"
"      --json              machine-readable output on stdout\n"
"  -q, --quiet             print only errors\n"
"  -v, --verbose           more detail (repeat for debug)\n"
"      --no-progress       no progress line even on a terminal\n"
"      --append-only       refuse every delete and overwrite (as an\n"
"                          append-only server would)\n"
"  -h, --help              this help; `bulwark COMMAND --help` for a command\n"
"  -V, --version           print the version\n"
"\n"
"Exit codes:\n"
"  0 success, 1 failure, 2 bad command line, 3 finished but some files or\n"
"  objects could not be handled (listed on stderr), 10 no repository at the\n"
"  location, 11 wrong passphrase, 130 interrupted.\n");
}

static const struct option global_opts[] = {
	{"repo", required_argument, NULL, 'r'},
	{"password-file", required_argument, NULL, 'p'},
	{"json", no_argument, NULL, 0x1001},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"no-progress", no_argument, NULL, 0x1002},
	{"append-only", no_argument, NULL, 0x1003},
	{NULL, 0, NULL, 0},
};

static int global_opt(int c, const char *arg)
{
	switch (c) {
	case 'r': g.repo = arg; return 1;
	case 'p': g.password_file = arg; return 1;
	case 0x1001: g.json = 1; return 1;
	case 'q': g.quiet = 1; return 1;
	case 'v':
		g.verbose++;
		bw_log_level = g.verbose > 1 ? BW_LOG_DEBUG : BW_LOG_INFO;
		return 1;
	case 0x1002: g.no_progress = 1; return 1;
	case 0x1003: g.append_only = 1; return 1;
	}
	return 0;
}

int cli_getopt(int argc, char **argv, const char *short_opts,
               const struct option *cmd_opts)
{
	static struct option all[128];
	static char shorts[128];
	size_t n = 0;
	for (const struct option *o = cmd_opts; o && o->name && n < 100; o++)
		all[n++] = *o;
	for (const struct option *o = global_opts; o->name; o++)
		all[n++] = *o;
	memset(&all[n], 0, sizeof all[n]);
	snprintf(shorts, sizeof shorts, "+%sr:p:qvh", short_opts ? short_opts : "");
	for (;;) {
		int c = getopt_long(argc, argv, shorts, all, NULL);
		if (c == -1 || !global_opt(c, optarg))
			return c;
	}
}

/* Set by cli_open_repo when the location holds no repository, so that
 * the BW_ENOENT it returned maps to EXIT_NOREPO and no other ENOENT does. */
static int no_repo;

int cli_exit_code(int r)
{
	switch (r) {
	case 0: return EXIT_OK;
	case BW_ENOENT: return no_repo ? EXIT_NOREPO : EXIT_ERROR;
	case BW_EPASS: return EXIT_BADPASS;
	case BW_EDAMAGED: return EXIT_PARTIAL;
	case BW_ECANCELED: return EXIT_INTERRUPT;
	case BW_EINVAL: return EXIT_USAGE;
	}
	return EXIT_ERROR;
}

int cli_fail(const char *cmd, int r)
{
	const char *m = bw_err_msg();
	if (*m)
		fprintf(stderr, "bulwark %s: %s\n", cmd, m);
	else
		fprintf(stderr, "bulwark %s: %s\n", cmd, bw_strerror(r));
	return cli_exit_code(r);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bulwark %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'bulwark %s --help'.\n", cmd);
	return EXIT_USAGE;
}

static int read_tty_line(const char *prompt, char *buf, size_t n)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct termios old, neu;
	int have = tcgetattr(fd, &old) == 0;
	if (have) {
		neu = old;
		neu.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &neu);
	}
	if (bw_write_full(fd, prompt, strlen(prompt)))
		bw_err_clear();
	size_t len = 0;
	for (;;) {
		char c;
		ssize_t k = read(fd, &c, 1);
		if (k <= 0 || c == '\n' || c == '\r')
			break;
		if (len + 1 < n)
			buf[len++] = c;
	}
	buf[len] = 0;
	if (have)
		tcsetattr(fd, TCSAFLUSH, &old);
	if (bw_write_full(fd, "\n", 1))
		bw_err_clear();
	close(fd);
	return (int)len;
}

int cli_get_pass(int confirm, const char *prompt, char **pass, size_t *len)
{
	const char *file = g.password_file ? g.password_file : getenv("BULWARK_PASSWORD_FILE");
	const char *env = getenv("BULWARK_PASSWORD");
	char *p = malloc(4096);
	if (!p)
		return BW_ENOMEM;
	if (file) {
		struct bw_buf b;
		bw_buf_init(&b, 4095);
		int r = bw_file_read(file, 4095, &b);
		if (r) {
			free(p);
			bw_buf_release(&b);
			return r;
		}
		size_t n = 0;
		while (n < b.len && b.data[n] != '\n' && b.data[n] != '\r')
			n++;
		memcpy(p, b.data, n);
		p[n] = 0;
		bw_wipe(b.data, b.len);
		bw_buf_release(&b);
		*len = n;
	} else if (env) {
		size_t n = strlen(env);
		if (n > 4095)
			n = 4095;
		memcpy(p, env, n);
		p[n] = 0;
		*len = n;
	} else {
		int n = read_tty_line(prompt ? prompt : "Passphrase: ", p, 4096);
		if (n < 0) {
			free(p);
			return bw_errf(BW_EINVAL, "no passphrase: use --password-file, "
			               "BULWARK_PASSWORD_FILE or BULWARK_PASSWORD, or run on a terminal");
		}
		if (confirm) {
			char again[4096];
			read_tty_line("Repeat passphrase: ", again, sizeof again);
			int same = !strcmp(again, p);
			bw_wipe(again, sizeof again);
			if (!same) {
				cli_pass_free(p, 4096);
				return bw_errf(BW_EINVAL, "the passphrases do not match");
			}
		}
		*len = (size_t)n;
	}
	if (*len == 0) {
		cli_pass_free(p, 4096);
		return bw_errf(BW_EINVAL, "empty passphrase");
	}
	*pass = p;
	return 0;
}

void cli_pass_free(char *pass, size_t len)
{
	if (!pass)
		return;
	(void)len;
	bw_wipe(pass, 4096);
	free(pass);
}

int cli_open_repo(const char *cmd, struct bw_repo **out)
{
	const char *loc = g.repo ? g.repo : getenv("BULWARK_REPO");
	if (!loc || !*loc) {
		cli_usage_error(cmd, "no repository: give -r DIR or set BULWARK_REPO");
		return BW_EINVAL;
	}
	char *pass = NULL;
	size_t len = 0;
	int r = cli_get_pass(0, NULL, &pass, &len);
	if (r)
		return r;
	r = bw_repo_open(loc, pass, len, out);
	cli_pass_free(pass, len);
	no_repo = r == BW_ENOENT;
	if (!r && g.append_only)
		bw_repo_set_append_only(*out, 1);
	return r;
}

void cli_progress_init(struct cli_progress *p, const char *verb)
{
	memset(p, 0, sizeof *p);
	p->start = bw_mono_s();
	p->verb = verb;
	p->active = !g.quiet && !g.json && !g.no_progress && isatty(2);
}

void cli_progress_cb(const struct bw_progress *pr, void *arg)
{
	struct cli_progress *p = arg;
	if (!p->active)
		return;
	double now = bw_mono_s();
	if (!pr->final && now - p->last < 0.2)
		return;
	p->last = now;
	double el = now - p->start;
	char done[32], total[32];
	bw_fmt_bytes(pr->bytes_done, done);
	bw_fmt_bytes(pr->bytes_total, total);
	int pct = pr->bytes_total ? (int)(100.0 * (double)pr->bytes_done / (double)pr->bytes_total) : 0;
	if (pct > 100)
		pct = 100;
	fprintf(stderr, "\r\033[K[%d:%02d] %3d%%  %s %llu/%llu files  %s / %s",
	        (int)el / 60, (int)el % 60, pct, p->verb,
	        (unsigned long long)pr->files_done,
	        (unsigned long long)pr->files_total, done, total);
	if (pr->errors)
		fprintf(stderr, "  %llu errors", (unsigned long long)pr->errors);
	if (el > 0.5) {
		char rate[32];
		bw_fmt_bytes((uint64_t)((double)pr->bytes_done / el), rate);
		fprintf(stderr, "  %s/s", rate);
	}
	fflush(stderr);
}

void cli_progress_done(struct cli_progress *p)
{
	if (p->active && p->last > 0)
		fprintf(stderr, "\r\033[K");
}

void cli_on_error(const char *path, const char *msg, void *arg)
{
	struct cli_errlog *e = arg;
	if (e->json) {
		json_t *j = json_pack("{s:s,s:o,s:s}", "message_type", "error",
		                      "path", cli_json_str_n(path, strlen(path)),
		                      "error", msg);
		json_dumpf(j, stderr, JSON_COMPACT);
		fputc('\n', stderr);
		json_decref(j);
	} else {
		fprintf(stderr, "%serror: ", e->tty ? "\r\033[K" : "");
		cli_print_escaped(stderr, path, strlen(path));
		fprintf(stderr, ": %s\n", msg);
	}
}

void cli_json_print(json_t *j)
{
	if (!j)
		return;
	json_dumpf(j, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(j);
}

void cli_short_id(const struct bw_id *id, char out[9])
{
	char hex[2 * BW_ID_LEN + 1];
	bw_id_hex(id, hex);
	memcpy(out, hex, 8);
	out[8] = 0;
}

json_t *cli_json_str_n(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	/* not valid UTF-8: escape the bytes that are not printable ASCII */
	struct bw_buf b;
	bw_buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int r = (c >= 0x20 && c < 0x7f && c != '\\') ? bw_buf_put_u8(&b, c)
		                                             : bw_buf_printf(&b, "\\x%02x", c);
		if (r)
			break;
	}
	j = json_stringn(b.data ? (const char *)b.data : "", b.len);
	bw_buf_release(&b);
	return j;
}

void cli_print_escaped(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

json_t *cli_json_snapshot(const struct bw_snapshot *s)
{
	char id[2 * BW_ID_LEN + 1], tree[2 * BW_ID_LEN + 1], ts[40], sh[9];
	bw_id_hex(&s->id, id);
	bw_id_hex(&s->tree, tree);
	bw_time_format(s->time_ns, ts);
	cli_short_id(&s->id, sh);
	json_t *paths = json_array(), *tags = json_array();
	for (size_t i = 0; i < s->npaths; i++)
		json_array_append_new(paths, json_string(s->paths[i]));
	for (size_t i = 0; i < s->ntags; i++)
		json_array_append_new(tags, json_string(s->tags[i]));
	json_t *sum = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
	        "files_new", (json_int_t)s->summary.files_new,
	        "files_changed", (json_int_t)s->summary.files_changed,
	        "files_unmodified", (json_int_t)s->summary.files_unmodified,
	        "data_added", (json_int_t)s->summary.data_added,
	        "data_added_packed", (json_int_t)s->summary.data_added_packed,
	        "total_files", (json_int_t)s->summary.total_files,
	        "total_bytes", (json_int_t)s->summary.total_bytes,
	        "errors", (json_int_t)s->summary.errors,
	        "duration_ns", (json_int_t)(s->summary.end_ns - s->summary.start_ns));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "id", id,
	                 "short_id", sh, "time", ts, "tree", tree,
	                 "hostname", s->hostname ? s->hostname : "",
	                 "username", s->username ? s->username : "",
	                 "paths", paths, "tags", tags, "summary", sum);
}

/* Every write is ordered so that the repository is consistent at any
 * instant: an interrupted command can simply stop. */
static void on_signal(int sig)
{
	(void)sig;
	static const char m[] = "\nbulwark: interrupted; the repository is unchanged or consistent\n";
	if (write(2, m, sizeof m - 1) < 0)
		_exit(EXIT_INTERRUPT);
	_exit(EXIT_INTERRUPT);
}

int main(int argc, char **argv)
{
	g.prog = "bulwark";
	/* Fixed mmap threshold: glibc would otherwise raise it to 32 MiB after
	 * the key derivation frees its buffer, and later large buffers would
	 * stay in the heap after use.  Few arenas: the workers share them. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_ARENA_MAX, 4);
	if (bw_crypto_init()) {
		fprintf(stderr, "bulwark: cannot initialise libsodium\n");
		return EXIT_ERROR;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* global options before the command */
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return EXIT_OK;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("bulwark %s (repository format %d)\n", BW_VERSION, BW_REPO_VERSION);
			return EXIT_OK;
		}
		if (a[0] != '-')
			break;
		const char *val = NULL;
		int c = 0;
		for (const struct option *o = global_opts; o->name && !c; o++) {
			size_t l = strlen(o->name);
			if (a[1] == '-' && !strncmp(a + 2, o->name, l) &&
			    (a[2 + l] == 0 || a[2 + l] == '=')) {
				c = o->val;
				if (o->has_arg) {
					val = a[2 + l] == '=' ? a + 3 + l : (i + 1 < argc ? argv[++i] : NULL);
					if (!val)
						return cli_usage_error("", "option %s needs a value", a);
				}
			} else if (a[1] == o->val && a[1] && a[2] == 0) {
				c = o->val;
				if (o->has_arg) {
					val = i + 1 < argc ? argv[++i] : NULL;
					if (!val)
						return cli_usage_error("", "option %s needs a value", a);
				}
			}
		}
		if (!c || !global_opt(c, val)) {
			fprintf(stderr, "bulwark: unknown option '%s'\n", a);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t k = 0; k < sizeof cmds / sizeof *cmds; k++) {
		if (!strcmp(argv[i], cmds[k].name)) {
			optind = 1;
			return cmds[k].run(argc - i, argv + i);
		}
	}
	fprintf(stderr, "bulwark: unknown command '%s'\nTry 'bulwark --help'.\n", argv[i]);
	return EXIT_USAGE;
}
