/* Process facts from /proc, and freezing process trees.
 *
 * The guard reads these for every first event of a process, so the
 * readers are single read(2)s into stack buffers. */
#include "proc.h"

#include <bulwark/core.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r;
	do
		r = read(fd, buf, n - 1);
	while (r < 0 && errno == EINTR);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	return r;
}

int bw_proc_info(pid_t pid, struct bw_proc_info *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof buf) <= 0)
		return BW_ENOENT;
	/* pid (comm) state ppid pgrp session tty_nr ... ; comm may hold ')' */
	char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	if (!l || !r || r < l)
		return BW_EFORMAT;
	memset(out, 0, sizeof *out);
	out->pid = pid;
	size_t cl = (size_t)(r - l - 1);
	if (cl >= sizeof out->comm)
		cl = sizeof out->comm - 1;
	memcpy(out->comm, l + 1, cl);
	char *p = r + 2;
	/* fields after comm: state(3) ppid(4) pgrp(5) session(6) tty(7) ...
	 * starttime is field 22 */
	long f[20] = {0};
	char *save = p;
	int i = 0;
	/* skip state */
	while (*save && *save != ' ')
		save++;
	while (*save == ' ' && i < 20) {
		save++;
		char *end;
		f[i++] = strtol(save, &end, 10);
		if (end == save)
			break;
		save = end;
	}
	/* f[0]=ppid f[1]=pgrp f[2]=session f[3]=tty ... f[18]=starttime */
	out->ppid = (pid_t)f[0];
	out->pgid = (pid_t)f[1];
	out->sid = (pid_t)f[2];
	out->tty = (int)f[3];
	out->start = (uint64_t)f[18];
	return 0;
}

pid_t bw_proc_tgid(pid_t tid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	if (read_small(path, buf, sizeof buf) <= 0)
		return -1;
	char *t = strstr(buf, "\nTgid:");
	if (!t)
		return -1;
	return (pid_t)strtol(t + 6, NULL, 10);
}

int bw_proc_exe(pid_t pid, char *out, size_t n)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	ssize_t r = readlink(path, out, n - 1);
	if (r < 0) {
		out[0] = 0;
		return BW_ENOENT;
	}
	out[r] = 0;
	return 0;
}

int bw_proc_cmdline(pid_t pid, char *out, size_t n)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	ssize_t r = read_small(path, out, n);
	if (r < 0) {
		out[0] = 0;
		return BW_ENOENT;
	}
	while (r > 0 && out[r - 1] == 0)
		r--;
	for (ssize_t i = 0; i < r; i++)
		if (out[i] == 0 || (unsigned char)out[i] < 0x20)
			out[i] = ' ';
	out[r] = 0;
	return 0;
}

int bw_proc_syscall(pid_t tid, long *nr, unsigned long args[6])
{
	/* the permission thread asks this for most events, often of the same
	 * thread: keep its file open and re-read it */
	static __thread pid_t ctid;
	static __thread int cfd = -1;
	char path[64], buf[256];
	*nr = -1;
	memset(args, 0, 6 * sizeof *args);
	if (ctid != tid || cfd < 0) {
		if (cfd >= 0)
			close(cfd);
		snprintf(path, sizeof path, "/proc/%d/syscall", (int)tid);
		cfd = open(path, O_RDONLY | O_CLOEXEC);
		ctid = cfd >= 0 ? tid : 0;
		if (cfd < 0)
			return BW_ENOENT;
	}
	ssize_t k = pread(cfd, buf, sizeof buf - 1, 0);
	if (k <= 0) {
		close(cfd);
		cfd = -1;
		ctid = 0;
		return BW_ENOENT;
	}
	buf[k] = 0;
	if (!strncmp(buf, "running", 7))
		return 0;
	char *p = buf, *end;
	long v = strtol(p, &end, 10);
	if (end == p)
		return BW_EFORMAT;
	*nr = v;
	p = end;
	for (int i = 0; i < 6; i++) {
		args[i] = strtoul(p, &end, 0);
		if (end == p)
			break;
		p = end;
	}
	return 0;
}

int bw_pidset_has(const struct bw_pidset *s, pid_t p)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == p)
			return 1;
	return 0;
}

int bw_pidset_add(struct bw_pidset *s, pid_t p)
{
	if (p <= 1 || bw_pidset_has(s, p))
		return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		pid_t *nv = realloc(s->v, nc * sizeof *nv);
		if (!nv)
			return BW_ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = p;
	return 1;
}

void bw_pidset_release(struct bw_pidset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

void bw_proc_signal_all(const struct bw_pidset *s, int sig)
{
	for (size_t i = 0; i < s->n; i++)
		kill(s->v[i], sig);
}

int bw_proc_freeze_closure(struct bw_pidset *s, pid_t same_sid, int stop,
                           pid_t never)
{
	size_t stopped = 0;
	for (int round = 0; round < 50; round++) {
		for (; stopped < s->n; stopped++)
			if (stop)
				kill(s->v[stopped], SIGSTOP);
		int added = 0;
		DIR *d = opendir("/proc");
		if (!d)
			return BW_EIO;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] < '1' || e->d_name[0] > '9')
				continue;
			pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
			if (pid == never || bw_pidset_has(s, pid))
				continue;
			struct bw_proc_info pi;
			if (bw_proc_info(pid, &pi))
				continue;
			if ((same_sid > 0 && pi.sid == same_sid) ||
			    bw_pidset_has(s, pi.ppid)) {
				int r = bw_pidset_add(s, pid);
				if (r < 0) {
					closedir(d);
					return r;
				}
				added += r;
			}
		}
		closedir(d);
		if (!added && stopped == s->n)
			return 0;
	}
	return 0;
}
