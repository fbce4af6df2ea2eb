/* The least a fanotify permission guard of bulwark's design can cost: run
 * a command while a bare listener on MOUNT answers every open permission
 * event (FAN_OPEN_PERM) with "allow" at once, doing nothing else.  Every
 * open of a watched file costs such a round trip, whatever the guard does
 * with it (reads and writes inside an episode can be made event-free with
 * ignore marks; opens cannot: the open is where a write episode is seen).
 * bench/guard.sh runs the rewrite microbenchmark under it.
 *
 * Usage: fanotify_floor MOUNT CMD [ARG...]   (root; exit status: CMD's) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FAN_CLASS_PRE_CONTENT
#define FAN_CLASS_PRE_CONTENT 0x00000008
#endif

static int fan = -1;

/* blocking reads: the shortest path from event to answer */
static void *listen_loop(void *arg)
{
	(void)arg;
	char buf[16384] __attribute__((aligned(8)));
	for (;;) {
		ssize_t len = read(fan, buf, sizeof buf);
		if (len <= 0)
			continue;
		struct fanotify_event_metadata *m = (void *)buf;
		for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
			if (m->fd < 0)
				continue;
			if (m->mask & FAN_OPEN_PERM) {
				struct fanotify_response r = {m->fd, FAN_ALLOW};
				if (write(fan, &r, sizeof r) != sizeof r)
					perror("fanotify_floor: response");
			}
			close(m->fd);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fanotify_floor MOUNT CMD [ARG...]\n");
		return 2;
	}
	fan = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
	if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_PERM,
	                             AT_FDCWD, argv[1])) {
		fprintf(stderr, "fanotify_floor: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	/* the listener is a process of its own, as the guard is */
	pid_t l = fork();
	if (l == 0) {
		listen_loop(NULL);
		_exit(0);
	}
	if (l < 0) {
		fprintf(stderr, "fanotify_floor: fork: %s\n", strerror(errno));
		return 2;
	}
	pid_t c = fork();
	if (c == 0) {
		close(fan);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "fanotify_floor: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	int st = 0;
	if (c < 0 || waitpid(c, &st, 0) < 0)
		st = 2 << 8;
	kill(l, SIGKILL);
	waitpid(l, NULL, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
