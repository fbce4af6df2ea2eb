/* Process facts from /proc, and stopping or killing sets of processes. */
#ifndef BW_GUARD_PROC_H
#define BW_GUARD_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bw_proc_info {
	pid_t pid, ppid, sid, pgid;
	int tty;          /* controlling terminal number, 0 = none */
	char comm[32];
	uint64_t start;   /* start time in clock ticks since boot */
};

/* /proc/PID/stat of a process or thread.  BW_ENOENT if it is gone. */
int bw_proc_info(pid_t pid, struct bw_proc_info *out);
/* Thread group (process) id of a thread id. */
pid_t bw_proc_tgid(pid_t tid);
/* readlink /proc/PID/exe into out (NUL-terminated). */
int bw_proc_exe(pid_t pid, char *out, size_t n);
/* The command line with NULs turned into spaces, bounded. */
int bw_proc_cmdline(pid_t pid, char *out, size_t n);

/* The system call a blocked thread is in, from /proc/TID/syscall:
 * nr = -1 if it is not in one (running), args[0..5]. */
int bw_proc_syscall(pid_t tid, long *nr, unsigned long args[6]);

/* A set of process ids. */
struct bw_pidset {
	pid_t *v;
	size_t n, cap;
};
int bw_pidset_add(struct bw_pidset *s, pid_t p);
int bw_pidset_has(const struct bw_pidset *s, pid_t p);
void bw_pidset_release(struct bw_pidset *s);

/* Grow s with every descendant of its members and, with same_sid > 0,
 * every process of that session.  Stops each new member with SIGSTOP when
 * stop is set, and repeats until no new process appears, so a tree that
 * forks while it is being frozen is still caught whole. */
int bw_proc_freeze_closure(struct bw_pidset *s, pid_t same_sid, int stop,
                           pid_t never);
void bw_proc_signal_all(const struct bw_pidset *s, int sig);

#endif
