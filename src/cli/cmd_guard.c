/* bulwark guard: run the ransomware guard, show its status, roll back. */
#include "cli.h"

#include <bulwark/guard.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/bulwark/guard.conf"

static void help(void)
{
	printf(
"Usage: bulwark guard run [OPTIONS]\n"
"       bulwark guard status [--state-dir DIR] [--json]\n"
"       bulwark guard rollback [--since TIME] [--until TIME] [--pid PID]...\n"
"                              [--session SID]... [--dry-run]\n"
"                              [--state-dir DIR] [--json]\n"
"       bulwark guard hash FILE...\n"
"\n"
"Stop ransomware on this machine and lose no file.  The guard watches the\n"
"protected directory trees with fanotify (Linux 6.14 or later, as root),\n"
"keeps what it needs to restore every file an untrusted program changes,\n"
"renames or deletes (the vault), scores the behaviour of each process tree,\n"
"freezes a tree that acts like ransomware, kills it and restores what it\n"
"damaged.  Alerts go to the alert log as JSON lines and to syslog.\n"
"\n"
"run: watch until SIGINT or SIGTERM.  A supervisor restarts the guard\n"
"within a second if it dies and reports the gap in coverage.\n"
"  -c, --config FILE     settings file (default " DEFAULT_CONFIG " if it exists)\n"
"  -P, --protect DIR     protect this tree (repeatable; not on tmpfs)\n"
"      --state-dir DIR   journal, vault copies, state (default\n"
"                        /var/lib/bulwark/guard; must be on another file\n"
"                        system than the protected trees)\n"
"      --alert-log FILE  JSON lines (default STATE-DIR/alerts.jsonl)\n"
"      --trust SPEC      trust PATH or PATH=sha256:HEX (repeatable; local\n"
"                        only: a server can never widen this list)\n"
"      --mode MODE       enforce (default) or monitor (alerts only)\n"
"      --no-supervisor   run the engine in this process\n"
"      --no-syslog       do not copy alerts to syslog\n"
"      --strict-reads    a permission event for every read as well: then a\n"
"                        truncate(2) by name of a file that nobody has open\n"
"                        for writing is copied before it happens (by default\n"
"                        it is detected and stopped, but that file's old\n"
"                        content is lost); costs about a round trip per read\n"
"      --json            print alerts on stdout as JSON lines\n"
"\n"
"status: protected trees, vault use, counters, recent verdicts.\n"
"\n"
"rollback: undo what happened in a window, from the journal: changed,\n"
"truncated, renamed and deleted files get their old content and names back,\n"
"files created in the window are removed.\n"
"      --since TIME      RFC 3339 time, or a duration ago such as 10min, 2h\n"
"      --until TIME      end of the window (default now)\n"
"      --pid PID         only what this process did (repeatable)\n"
"      --session SID     only what processes of this session did (repeatable;\n"
"                        alerts name the session)\n"
"      --dry-run         say what would be done\n"
"\n"
"hash: print 'trust PATH sha256:HEX' lines for the settings file.\n"
"\n"
"Exit codes: 0 success, 1 failure, 2 bad command line, 3 rollback done but\n"
"some files could not be restored (listed on stderr).\n"
"See docs/guard.md.\n");
}

static volatile int stop_flag;
static volatile pid_t child_pid;

static void on_signal(int sig)
{
	stop_flag = 1;
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void print_alert(const char *line, void *arg)
{
	(void)arg;
	if (g.json) {
		printf("%s\n", line);
		fflush(stdout);
		return;
	}
	json_t *j = json_loads(line, 0, NULL);
	const char *ev = j ? json_string_value(json_object_get(j, "event")) : NULL;
	if (ev && !strcmp(ev, "ransomware")) {
		json_t *rb = json_object_get(j, "rollback");
		json_t *pr = json_object_get(j, "processes");
		const char *exe = json_string_value(json_object_get(json_array_get(pr, 0), "exe"));
		fprintf(stderr, "guard: %s %zu process(es) of session %lld (%s), score %.1f; "
		        "restored %lld file(s), removed %lld, failed %lld\n",
		        json_string_value(json_object_get(j, "action")), json_array_size(pr),
		        (long long)json_integer_value(json_object_get(j, "sid")),
		        exe ? exe : "?", json_real_value(json_object_get(j, "score")),
		        (long long)json_integer_value(json_object_get(rb, "restored")),
		        (long long)json_integer_value(json_object_get(rb, "removed")),
		        (long long)json_integer_value(json_object_get(rb, "failed")));
	} else {
		fprintf(stderr, "guard: %s\n", line);
	}
	json_decref(j);
}

static int run_engine(const struct bw_guard_policy *pol, int64_t gap_from,
                      const char *gap_why)
{
	struct bw_guard *gd;
	int r = bw_guard_new(pol, &gd);
	if (r)
		return cli_fail("guard run", r);
	bw_guard_set_alert_cb(gd, print_alert, NULL);
	if (gap_from)
		bw_guard_report_gap(gd, gap_from, bw_now_ns(), gap_why);
	if (!g.quiet && !g.json)
		fprintf(stderr, "guard: watching %d tree(s), state in %s (pid %d)\n",
		        pol->nprotect, pol->state_dir, (int)getpid());
	r = bw_guard_run(gd, &stop_flag);
	bw_guard_free(gd);
	return r ? cli_fail("guard run", r) : EXIT_OK;
}

/* The supervisor: restart a guard that died, within a second, and let
 * the new one report the gap. */
static int supervise(const struct bw_guard_policy *pol)
{
	int64_t gap_from = 0;
	char why[256] = "";
	int restarts = 0;
	while (!stop_flag) {
		int64_t started = bw_now_ns();
		pid_t pid = fork();
		if (pid < 0)
			return cli_fail("guard run", bw_errf(BW_EIO, "fork: %s", strerror(errno)));
		if (pid == 0) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			struct sigaction sa = {0};
			sa.sa_handler = on_signal;
			sigaction(SIGINT, &sa, NULL);
			sigaction(SIGTERM, &sa, NULL);
			child_pid = 0;
			_exit(run_engine(pol, gap_from, why));
		}
		child_pid = pid;
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		child_pid = 0;
		if (stop_flag)
			break;
		if (WIFEXITED(st) && (WEXITSTATUS(st) == EXIT_USAGE ||
		                      (WEXITSTATUS(st) == EXIT_ERROR &&
		                       bw_now_ns() - started < 2000000000LL && restarts == 0))) {
			/* it could not start at all: restarting will not help */
			return WEXITSTATUS(st);
		}
		gap_from = bw_now_ns();
		if (WIFSIGNALED(st))
			snprintf(why, sizeof why, "guard process %d killed by signal %d",
			         (int)pid, WTERMSIG(st));
		else
			snprintf(why, sizeof why, "guard process %d exited with %d", (int)pid,
			         WEXITSTATUS(st));
		fprintf(stderr, "guard: %s; restarting\n", why);
		restarts++;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return EXIT_OK;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"protect", required_argument, NULL, 'P'},
		{"state-dir", required_argument, NULL, 1},
		{"alert-log", required_argument, NULL, 2},
		{"trust", required_argument, NULL, 3},
		{"mode", required_argument, NULL, 4},
		{"no-supervisor", no_argument, NULL, 5},
		{"no-syslog", no_argument, NULL, 6},
		{"strict-reads", no_argument, NULL, 7},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct bw_guard_policy pol;
	bw_guard_policy_defaults(&pol);
	const char *config = NULL;
	int nosup = 0, r;
	/* the settings file first, so the command line overrides it */
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
			config = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
	}
	if (!config && access(DEFAULT_CONFIG, R_OK) == 0)
		config = DEFAULT_CONFIG;
	if (config && (r = bw_guard_policy_load(&pol, config)))
		return cli_fail("guard run", r);
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "c:P:", opts)) != -1) {
		switch (c) {
		case 'c': break;
		case 'P':
			if (pol.nprotect >= BW_GUARD_MAX_PROTECT)
				return cli_usage_error("guard run", "at most %d --protect", BW_GUARD_MAX_PROTECT);
			snprintf(pol.protect[pol.nprotect++], sizeof pol.protect[0], "%s", optarg);
			break;
		case 1: snprintf(pol.state_dir, sizeof pol.state_dir, "%s", optarg); break;
		case 2: snprintf(pol.alert_log, sizeof pol.alert_log, "%s", optarg); break;
		case 3:
			if ((r = bw_guard_policy_add_trust(&pol, optarg)))
				return cli_usage_error("guard run", "%s", bw_err_msg());
			break;
		case 4:
			if (!strcmp(optarg, "enforce"))
				pol.mode = BW_GUARD_ENFORCE;
			else if (!strcmp(optarg, "monitor"))
				pol.mode = BW_GUARD_MONITOR;
			else
				return cli_usage_error("guard run", "--mode is enforce or monitor");
			break;
		case 5: nosup = 1; break;
		case 6: pol.use_syslog = 0; break;
		case 7: pol.strict_reads = 1; break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("guard run", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("guard run", "unexpected argument '%s'", argv[optind]);
	if (!pol.nprotect)
		return cli_usage_error("guard run", "nothing to protect: give --protect DIR "
		                       "or 'protect DIR' in the settings file");
	if (pol.state_dir[0] != '/') {
		char cwd[2048];
		char tmp[4096];
		if (!getcwd(cwd, sizeof cwd) || strlen(pol.state_dir) >= 2000)
			return cli_fail("guard run", BW_EIO);
		snprintf(tmp, sizeof tmp, "%s/%.2000s", cwd, pol.state_dir);
		snprintf(pol.state_dir, sizeof pol.state_dir, "%s", tmp);
	}
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (nosup)
		return run_engine(&pol, 0, NULL);
	return supervise(&pol);
}

static int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state-dir", required_argument, NULL, 1},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	const char *sd = BW_GUARD_STATE_DIR;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c == 'h') {
			help();
			return EXIT_OK;
		}
		if (c != 1)
			return cli_usage_error("guard status", "unknown option");
		sd = optarg;
	}
	char p[4200];
	snprintf(p, sizeof p, "%s/state.json", sd);
	json_error_t e;
	json_t *s = json_load_file(p, 0, &e);
	if (!s) {
		fprintf(stderr, "bulwark guard status: no guard state in %s (is the guard "
		        "running with --state-dir %s?)\n", sd, sd);
		return EXIT_ERROR;
	}
	pid_t pid = (pid_t)json_integer_value(json_object_get(s, "pid"));
	int running = pid > 0 && kill(pid, 0) == 0;
	json_object_set_new(s, "running", json_boolean(running));
	if (g.json) {
		cli_json_print(s);
		return running ? EXIT_OK : EXIT_ERROR;
	}
	json_t *v = json_object_get(s, "vault"), *cn = json_object_get(s, "counters");
	char used[32], budget[32];
	bw_fmt_bytes((uint64_t)json_integer_value(json_object_get(v, "copy_bytes")), used);
	bw_fmt_bytes((uint64_t)json_integer_value(json_object_get(v, "budget_bytes")), budget);
	printf("guard:      %s (pid %d, %s mode), since %s, state updated %s\n",
	       running ? "running" : "NOT RUNNING", (int)pid,
	       json_string_value(json_object_get(s, "mode")),
	       json_string_value(json_object_get(s, "started")),
	       json_string_value(json_object_get(s, "updated")));
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(s, "protected"), i, x)
		printf("protected:  %s\n", json_string_value(x));
	printf("vault:      %lld copy files, %s of %s; %lld files held open against "
	       "deletion%s\n",
	       (long long)json_integer_value(json_object_get(v, "copies")), used, budget,
	       (long long)json_integer_value(json_object_get(v, "files_held")),
	       json_integer_value(json_object_get(v, "files_unheld")) ? " (some over the limit)" : "");
	printf("events:     %lld (%lld allowed, %lld denied), %lld copies made "
	       "(%lld rewrites of a process's own files needed none), "
	       "%lld queue overflows\n",
	       (long long)json_integer_value(json_object_get(cn, "events")),
	       (long long)json_integer_value(json_object_get(cn, "allowed")),
	       (long long)json_integer_value(json_object_get(cn, "denied")),
	       (long long)json_integer_value(json_object_get(cn, "copies_made")),
	       (long long)json_integer_value(json_object_get(cn, "own_rewrites")),
	       (long long)json_integer_value(json_object_get(cn, "overflows")));
	printf("            by kind: %lld opens, %lld reads, %lld writes, %lld closes "
	       "after writing\n",
	       (long long)json_integer_value(json_object_get(cn, "opens")),
	       (long long)json_integer_value(json_object_get(cn, "reads")),
	       (long long)json_integer_value(json_object_get(cn, "writes")),
	       (long long)json_integer_value(json_object_get(cn, "closes")));
	json_t *vs = json_object_get(s, "recent_verdicts");
	printf("verdicts:   %zu recent\n", json_array_size(vs));
	json_array_foreach(vs, i, x) {
		json_t *rb = json_object_get(x, "rollback");
		const char *exe = json_string_value(json_object_get(x, "exe"));
		printf("  %s  %s session %lld (%s), score %.1f, restored %lld, removed %lld, "
		       "failed %lld\n",
		       json_string_value(json_object_get(x, "time")),
		       json_string_value(json_object_get(x, "action")),
		       (long long)json_integer_value(json_object_get(x, "sid")), exe ? exe : "?",
		       json_real_value(json_object_get(x, "score")),
		       (long long)json_integer_value(json_object_get(rb, "restored")),
		       (long long)json_integer_value(json_object_get(rb, "removed")),
		       (long long)json_integer_value(json_object_get(rb, "failed")));
	}
	json_decref(s);
	return running ? EXIT_OK : EXIT_ERROR;
}

static void on_rb_file(const char *action, const char *path, const char *why, void *arg)
{
	(void)arg;
	if (g.json) {
		json_t *o = json_object();
		json_object_set_new(o, "action", json_string(action));
		json_object_set_new(o, "path", cli_json_str_n(path, strlen(path)));
		if (why)
			json_object_set_new(o, "error", json_string(why));
		cli_json_print(o);
		return;
	}
	FILE *f = why ? stderr : stdout;
	fprintf(f, "%s ", action);
	cli_print_escaped(f, path, strlen(path));
	if (why)
		fprintf(f, ": %s", why);
	fputc('\n', f);
}

static int parse_when(const char *s, int64_t *ns)
{
	int64_t d;
	if (!cli_parse_duration(s, &d)) {
		*ns = bw_now_ns() - d;
		return 0;
	}
	return bw_time_parse(s, ns);
}

static int cmd_rollback(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state-dir", required_argument, NULL, 1},
		{"since", required_argument, NULL, 2},
		{"until", required_argument, NULL, 3},
		{"pid", required_argument, NULL, 4},
		{"dry-run", no_argument, NULL, 5},
		{"session", required_argument, NULL, 6},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bw_guard_rollback_opts o = {0};
	static int pids[256], sids[256];
	size_t npids = 0, nsids = 0;
	int c, have_since = 0;
	const char *sd = BW_GUARD_STATE_DIR;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		char *end;
		switch (c) {
		case 1: sd = optarg; break;
		case 2:
			if (parse_when(optarg, &o.since_ns))
				return cli_usage_error("guard rollback", "--since: a time such as "
				                       "2026-12-01T10:00:00Z or a duration such as 10min");
			have_since = 1;
			break;
		case 3:
			if (parse_when(optarg, &o.until_ns))
				return cli_usage_error("guard rollback", "--until: a time or a duration");
			break;
		case 4: {
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || npids >= 256)
				return cli_usage_error("guard rollback", "--pid takes a process id");
			pids[npids++] = (int)v;
			break;
		}
		case 5: o.dry_run = 1; break;
		case 6: {
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || nsids >= 256)
				return cli_usage_error("guard rollback", "--session takes a session id");
			sids[nsids++] = (int)v;
			break;
		}
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("guard rollback", "unknown option");
		}
	}
	if (!have_since)
		return cli_usage_error("guard rollback", "give --since (how far back to undo)");
	if (npids) {
		o.pids = pids;
		o.npids = npids;
	}
	if (nsids) {
		o.sids = sids;
		o.nsids = nsids;
	}
	o.on_file = on_rb_file;
	struct bw_guard_rollback_stats st;
	int r = bw_guard_rollback(sd, &o, &st);
	if (r && r != BW_EDAMAGED)
		return cli_fail("guard rollback", r);
	if (g.json) {
		json_t *s = json_object();
		json_object_set_new(s, "restored", json_integer((json_int_t)st.restored));
		json_object_set_new(s, "removed", json_integer((json_int_t)st.removed));
		json_object_set_new(s, "failed", json_integer((json_int_t)st.failed));
		json_object_set_new(s, "dry_run", json_boolean(o.dry_run));
		cli_json_print(s);
	} else if (!g.quiet) {
		fprintf(stderr, "%s%llu restored, %llu removed, %llu failed\n",
		        o.dry_run ? "dry run: " : "", (unsigned long long)st.restored,
		        (unsigned long long)st.removed, (unsigned long long)st.failed);
	}
	return r ? EXIT_PARTIAL : EXIT_OK;
}

static int cmd_hash(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc < 2)
			return cli_usage_error("guard hash", "give one or more programs");
		help();
		return EXIT_OK;
	}
	int rc = EXIT_OK;
	for (int i = 1; i < argc; i++) {
		char rp[4096], hex[65];
		if (!realpath(argv[i], rp) || bw_guard_file_sha256(rp, hex)) {
			fprintf(stderr, "bulwark guard hash: %s: %s\n", argv[i], strerror(errno));
			rc = EXIT_ERROR;
			continue;
		}
		printf("trust %s sha256:%s\n", rp, hex);
	}
	return rc;
}

int cmd_guard(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help();
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(sub, "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(sub, "rollback"))
		return cmd_rollback(argc - 1, argv + 1);
	if (!strcmp(sub, "hash"))
		return cmd_hash(argc - 1, argv + 1);
	return cli_usage_error("guard", "unknown subcommand '%s' (run, status, rollback, hash)",
	                       sub);
}
