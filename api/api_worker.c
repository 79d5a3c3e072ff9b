/* api_worker.c — per-thread workers: each HTTP thread's own store handle and engine (store handles
 * are not thread-safe), made on the thread's first request and freed when the thread exits. */
#include "api_http.h"

#include <pthread.h>
#include <stdlib.h>

#include "api_log.h"

/* Per-thread workers. The key is created once per process; the lock serialises store_clone,
 * which reads the shared base handle. */
static pthread_key_t worker_key;
static pthread_once_t worker_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t clone_lock = PTHREAD_MUTEX_INITIALIZER;

static void worker_free(void *p)
{
    struct api_worker *w = p;
    if (!w)
        return;
    eng_free(w->eng);
    store_free(w->st);
    free(w->rep);
    free(w);
}

static void worker_key_init(void) { pthread_key_create(&worker_key, worker_free); }

void api_worker_init(void) { pthread_once(&worker_once, worker_key_init); }

struct api_worker *api_worker_get(struct api_server *s)
{
    struct api_worker *w = pthread_getspecific(worker_key);
    if (w)
        return w;
    w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    pthread_mutex_lock(&clone_lock);
    w->st = store_clone(s->base);
    pthread_mutex_unlock(&clone_lock);
    w->rep = malloc(sizeof *w->rep);
    if (w->st)
        w->eng = eng_new(w->st, &s->eng_cfg);
    if (!w->st || !w->eng || !w->rep || pthread_setspecific(worker_key, w) != 0) {
        api_log("error", "cannot create the worker's store handle or engine", NULL);
        worker_free(w);
        return NULL;
    }
    return w;
}

void api_worker_net(struct api_server *s, struct api_worker *w)
{
    w->net = nr_slot_get(s->net);
    eng_set_net(w->eng, w->net);
}

void api_worker_net_done(struct api_worker *w)
{
    eng_set_net(w->eng, NULL);
    nr_table_unref(w->net);
    w->net = NULL;
}
