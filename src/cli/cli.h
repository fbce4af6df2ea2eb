/* Shared pieces of the `bulwark` command: global options, passphrases,
 * opening the repository, progress lines and JSON output. */
#ifndef BW_CLI_H
#define BW_CLI_H

#include <bulwark/repo.h>

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

/* Exit codes (documented in docs/cli.md and `bulwark --help`). */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,      /* the command failed */
	EXIT_USAGE = 2,      /* bad command line */
	EXIT_PARTIAL = 3,    /* done, but some files/objects could not be handled */
	EXIT_NOREPO = 10,    /* no repository at the location */
	EXIT_BADPASS = 11,   /* wrong passphrase */
	EXIT_INTERRUPT = 130,
};

struct cli {
	const char *repo;
	const char *password_file;
	int json;
	int quiet;
	int verbose;
	int no_progress;
	int append_only;
	const char *prog;
};
extern struct cli g;

struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* getopt_long over the command's options plus the global ones.  Returns
 * like getopt_long; global options are consumed here. short_opts is
 * the command's; "r:" etc. are added. */
int cli_getopt(int argc, char **argv, const char *short_opts,
               const struct option *cmd_opts);
/* Print "bulwark CMD: message" for code r with the engine's detail, map to
 * an exit code. */
int cli_fail(const char *cmd, int r);
int cli_exit_code(int r);
int cli_usage_error(const char *cmd, const char *fmt, ...) BW_PRINTF(2, 3);

/* Passphrase from --password-file, BULWARK_PASSWORD_FILE, BULWARK_PASSWORD
 * or a prompt on the terminal (twice if confirm).  Caller frees with
 * cli_pass_free (wipes). */
int cli_get_pass(int confirm, const char *prompt, char **pass, size_t *len);
void cli_pass_free(char *pass, size_t len);
/* Open the repository named by -r/BULWARK_REPO. */
int cli_open_repo(const char *cmd, struct bw_repo **out);

/* Progress on a terminal (stderr), rate-limited; silent otherwise. */
struct cli_progress {
	double start, last;
	const char *verb;
	int active;
};
void cli_progress_init(struct cli_progress *p, const char *verb);
void cli_progress_cb(const struct bw_progress *p, void *arg);
void cli_progress_done(struct cli_progress *p);

/* Per-file errors of backup and restore: a JSON line or an escaped text
 * line on stderr (clearing the progress line first when tty is set). */
struct cli_errlog {
	int json;
	int tty;
};
void cli_on_error(const char *path, const char *msg, void *arg);

/* JSON helpers: print one object (and free it) */
void cli_json_print(json_t *j);
json_t *cli_json_snapshot(const struct bw_snapshot *s);
json_t *cli_json_str_n(const char *s, size_t n); /* bytes -> string, escapes invalid UTF-8 */
void cli_print_escaped(FILE *f, const char *s, size_t n); /* shows non-printables as \xNN */
void cli_short_id(const struct bw_id *id, char out[9]);

/* "1y2m3d4h": y = 365 days, m = 30 days (months), w, d, h, min, s;
 * units may repeat in any order.  0 or BW_EINVAL.  (cmd_forget.c) */
int cli_parse_duration(const char *s, int64_t *ns);
/* Run prune and print its summary (text or JSON); returns an exit code.
 * (cmd_prune.c) */
int cli_prune_run(struct bw_repo *repo, const struct bw_prune_opts *o);

/* Commands */
int cmd_init(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_snapshots(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_find(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_guard(int argc, char **argv);

#endif
