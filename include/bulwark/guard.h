/* bulwark guard: stops ransomware behaviour on the endpoint and rolls the
 * damaged files back.
 *
 * The engine watches protected directory trees with fanotify (a
 * pre-content permission group for opens and writes, a notification group
 * for names), keeps what is needed to restore every file an untrusted
 * process changes (the vault), scores behaviour per process tree, freezes
 * a tree that crosses the threshold, kills it and restores its damage.
 * See docs/internals/guard.md for how and why.
 *
 * The `bulwark guard` command is a thin shell around this interface; the
 * endpoint agent will host the same engine in its privileged part. */
#ifndef BULWARK_GUARD_H
#define BULWARK_GUARD_H

#include <bulwark/core.h>

#include <stdint.h>

#define BW_GUARD_MAX_PROTECT 16
#define BW_GUARD_MAX_TRUST 64

enum bw_guard_mode {
	BW_GUARD_ENFORCE, /* freeze, kill, roll back */
	BW_GUARD_MONITOR, /* score and alert only; never stops a process */
};

/* A locally trusted program: its writes are neither vaulted nor scored.
 * sha256 all zero means "any content at that path" (not recommended). */
struct bw_guard_trust {
	char path[4096];
	uint8_t sha256[32];
	int any_hash;
};

/* The policy.  Filled by bw_guard_policy_defaults() and then by a local
 * configuration file (bw_guard_policy_load) and the command line.  The
 * trusted list is local only: nothing received from a server widens it. */
struct bw_guard_policy {
	char protect[BW_GUARD_MAX_PROTECT][4096];
	int nprotect;
	char state_dir[4096];   /* journal, copies, state.json, alerts */
	char alert_log[4096];   /* JSON lines; "" = state_dir/alerts.jsonl */
	struct bw_guard_trust trust[BW_GUARD_MAX_TRUST];
	int ntrust;
	enum bw_guard_mode mode;
	uint64_t vault_budget;  /* bytes of copies kept at most */
	uint64_t copy_max;      /* larger files are not copied (alerted) */
	int64_t expiry_ns;      /* vault entries older than this are dropped */
	double freeze_score;    /* freeze the tree at this score */
	double kill_score;      /* after the freeze: kill at this score */
	int64_t window_ns;      /* behaviour older than this stops counting */
	int canaries;           /* place and watch canary files */
	int use_syslog;
	int strict_reads;       /* a permission event for every read too, so
	                           that truncate(2) by name of a file nobody
	                           has open for writing is copied first (by
	                           default it is detected, not copied) */
};

/* the state directory when none is set */
#define BW_GUARD_STATE_DIR "/var/lib/bulwark/guard"

void bw_guard_policy_defaults(struct bw_guard_policy *p);
/* Parse a configuration file ("key value" lines, # comments; see
 * docs/guard.md).  Bounded: at most 1 MiB, lines of at most 8 KiB.
 * Errors name the file and line. */
int bw_guard_policy_load(struct bw_guard_policy *p, const char *path) BW_WUR;
/* The same over bytes (for tests and the fuzz target); name is for
 * messages. */
int bw_guard_policy_parse(struct bw_guard_policy *p, const char *name,
                          const char *text, size_t len) BW_WUR;
/* Add a trusted program: "PATH" or "PATH=sha256:HEX". */
int bw_guard_policy_add_trust(struct bw_guard_policy *p, const char *spec) BW_WUR;
/* SHA-256 of a file's content, hex (65 bytes). */
int bw_guard_file_sha256(const char *path, char hex[65]) BW_WUR;

/* ---- the running engine ------------------------------------------------- */
struct bw_guard;

/* Check the policy and the kernel (fanotify pre-content events need
 * Linux 6.14+ and root), set up the vault and the marks, scan the
 * protected trees.  On failure nothing is left marked.  *out is freed
 * with bw_guard_free. */
int bw_guard_new(const struct bw_guard_policy *p, struct bw_guard **out) BW_WUR;
/* Run until *stop becomes non-zero (set it from a signal handler). */
int bw_guard_run(struct bw_guard *g, volatile int *stop) BW_WUR;
void bw_guard_free(struct bw_guard *g);

/* Events out: every alert is also passed to this callback as one JSON
 * line (no newline), in the form the management server ingests. */
void bw_guard_set_alert_cb(struct bw_guard *g,
                           void (*cb)(const char *json_line, void *arg),
                           void *arg);

/* Record a gap in coverage (the supervisor calls this after restarting a
 * guard that died): an alert and a rescan. */
void bw_guard_report_gap(struct bw_guard *g, int64_t from_ns, int64_t to_ns,
                         const char *why);

/* ---- rollback ------------------------------------------------------------- */
struct bw_guard_rollback_opts {
	int64_t since_ns, until_ns;  /* the window; until 0 = now */
	const int *pids;             /* only what these processes did... */
	size_t npids;
	const int *sids;             /* ...or processes of these sessions; */
	size_t nsids;                /* both NULL = everything in the window */
	int dry_run;
	/* called per file: action "restore", "remove" or "skip", why for skip */
	void (*on_file)(const char *action, const char *path, const char *why,
	                void *arg);
	void *arg;
};
struct bw_guard_rollback_stats {
	uint64_t restored, removed, failed;
};
/* Undo what happened in the window, from the journal in state_dir:
 * restore every changed, truncated, renamed or deleted file to its content
 * and name before the window, and remove files the processes created. */
int bw_guard_rollback(const char *state_dir,
                      const struct bw_guard_rollback_opts *o,
                      struct bw_guard_rollback_stats *st) BW_WUR;

#endif
