/* A fixed-size thread pool with a bounded FIFO queue. */
#include <bulwark/core.h>

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct task {
	void (*fn)(void *);
	void *arg;
	struct task *next;
};

struct bw_pool {
	pthread_mutex_t lock;
	pthread_cond_t more, room, idle;
	struct task *head, *tail;
	size_t queued, queue_max;
	int busy, stop, n;
	pthread_t *threads;
};

static void *worker(void *vp)
{
	struct bw_pool *p = vp;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->more, &p->lock);
		if (!p->head && p->stop)
			break;
		struct task *t = p->head;
		p->head = t->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		p->busy++;
		pthread_cond_signal(&p->room);
		pthread_mutex_unlock(&p->lock);
		t->fn(t->arg);
		free(t);
		pthread_mutex_lock(&p->lock);
		p->busy--;
		if (!p->head && !p->busy)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int bw_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

struct bw_pool *bw_pool_new(int nthreads)
{
	struct bw_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	if (nthreads < 1)
		nthreads = 1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->more, NULL);
	pthread_cond_init(&p->room, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->queue_max = (size_t)nthreads * 64;
	p->threads = calloc((size_t)nthreads, sizeof *p->threads);
	if (!p->threads) {
		free(p);
		return NULL;
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p))
			break;
		p->n++;
	}
	if (!p->n) {
		free(p->threads);
		free(p);
		return NULL;
	}
	return p;
}

int bw_pool_submit(struct bw_pool *p, void (*fn)(void *), void *arg)
{
	struct task *t = malloc(sizeof *t);
	if (!t)
		return BW_ENOMEM;
	t->fn = fn;
	t->arg = arg;
	t->next = NULL;
	pthread_mutex_lock(&p->lock);
	while (p->queued >= p->queue_max)
		pthread_cond_wait(&p->room, &p->lock);
	if (p->tail)
		p->tail->next = t;
	else
		p->head = t;
	p->tail = t;
	p->queued++;
	pthread_cond_signal(&p->more);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void bw_pool_set_queue_max(struct bw_pool *p, size_t n)
{
	pthread_mutex_lock(&p->lock);
	p->queue_max = n ? n : 1;
	pthread_cond_broadcast(&p->room);
	pthread_mutex_unlock(&p->lock);
}

void bw_pool_wait(struct bw_pool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->head || p->busy)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void bw_pool_free(struct bw_pool *p)
{
	if (!p)
		return;
	bw_pool_wait(p);
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	free(p);
}
