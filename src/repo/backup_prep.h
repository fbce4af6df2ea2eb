/* Backup helpers around the walk: the tree of the paths given, the
 * session refresher, checks of snapshot metadata.  Private to src/repo. */
#ifndef BW_REPO_BACKUP_PREP_H
#define BW_REPO_BACKUP_PREP_H

#include <pthread.h>

#include "repo_int.h"

/* Virtual directories for the components above the given paths. */
struct vdir {
	char *name;
	char *path;   /* real path of this component */
	int leaf;     /* a path the user named: walk it for real */
	struct vdir *kids;
	size_t nkids;
};

void bw_vdir_free(struct vdir *v);
/* Add an absolute, normalised path; an ancestor already added wins. */
int bw_vdir_add(struct vdir *root, const char *abs) BW_WUR;
int bw_vdir_cmp(const void *a, const void *b); /* qsort by name */

/* Keeps the session lock fresh while a long backup runs, so that a prune
 * elsewhere never takes it for dead (see prune.c). */
#define SESSION_REFRESH_S 120

struct bw_refresher {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, running, inited;
	struct bw_session *s;
};
void bw_refresher_start(struct bw_refresher *f, struct bw_session *s);
void bw_refresher_stop(struct bw_refresher *f); /* safe if never started */

/* Paths, tags, host and stdin name must be UTF-8 (snapshot JSON). */
int bw_backup_check_utf8(const struct bw_backup_opts *o) BW_WUR;
int bw_str_cmp(const void *a, const void *b); /* qsort of char * */
char **bw_strv_dup(const char *const *v, size_t n); /* NULL on ENOMEM */
/* Absolute and lexically normalised ("//", ".", ".."), symlinks untouched. */
int bw_path_absolute(const char *p, char **out) BW_WUR;

#endif
