/* socket.connect(): argument checks, the name lookup (the system's or the
 * user's), the connection attempts -- one, Node's sequential family
 * autoselection, or RFC 8305's parallel one -- the connect timeout, and the
 * IPC connect.
 *
 * Each TCP attempt is its own non-blocking socket watched by a uv_poll_t,
 * not the socket's uv_tcp_t: parallel attempts need several descriptors at
 * once, and a libuv handle cannot move. The winner's descriptor is handed
 * to the socket's handle with uv_tcp_open(); the others are closed.
 *
 * The state of one connect() (cnet__connect_t) belongs to the socket until
 * the connect ends or the socket is destroyed; then it is detached and goes
 * away when its two timers have closed, so nothing that runs later --
 * a timer, an attempt, a resolver's answer -- can reach a freed socket. */
#include "internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define CNET__NO_PORT INT32_MIN
#define DEFAULT_ATTEMPT_TIMEOUT 250 /* ms: Node v20-v24 */
#define MIN_ATTEMPT_TIMEOUT 10      /* Node raises 1..9 to this */

enum { MODE_SINGLE, MODE_SEQUENTIAL, MODE_PARALLEL };

typedef struct cnet__attempt_s cnet__attempt_t;

typedef struct {
  cnet__sockaddr_t sa;
  int family; /* 4 or 6 */
  char ip[CNET_ADDR_MAX];
} dest_t;

struct cnet__attempt_s {
  uv_poll_t poll;
  cnet__attempt_t *next; /* the connect's attempts in flight */
  cnet__connect_t *c;    /* NULL once abandoned (closing) */
  unsigned index;        /* into c->dests and the socket's attempt log */
  int fd;
};

struct cnet__connect_s {
  cnet_socket_t *s;   /* NULL once detached */
  cnet__loop_t *loop;
  uv_timer_t stagger;  /* attempt timeout (sequential) / delay (parallel) */
  uv_timer_t deadline; /* connect_timeout */
  uint8_t open_timers; /* freed when detached and this reaches 0 */
  uint8_t mode;
  cnet_lookup_t *lookup; /* the lookup in flight, if any */
  dest_t *dests;
  unsigned n_dests, next; /* next: the first destination not yet tried */
  cnet__attempt_t *attempts;
  cnet__attempt_t *current; /* sequential and single: the one running */
  int port;
  int local_port;
  bool has_local_address;
  cnet__sockaddr_t local; /* local_address, without the port */
  char local_ip[CNET_ADDR_MAX];
  unsigned attempt_timeout;
  uint64_t connect_timeout;
  const cnet_block_list_t *block_list;
  char host[CNET_HOST_MAX]; /* the name looked up */
  char address[CNET_ADDR_MAX]; /* IPC: the path as shown in messages */
};

struct cnet_lookup_s {
  cnet_socket_t *s; /* holds a reference until the answer is handled */
  cnet_lookup_options_t opts;
  int err;
  cnet_error_t *error; /* cnet_lookup_fail's, or NULL */
  dest_t *answers;     /* as given, valid or not */
  size_t n;
  char host[CNET_HOST_MAX];
};

static atomic_bool default_auto_select = true;
static atomic_uint default_attempt_timeout = DEFAULT_ATTEMPT_TIMEOUT;

/* ---- process-wide defaults (MS-02, HE-11) ------------------------------- */

bool cnet_get_default_auto_select_family(void) {
  return atomic_load(&default_auto_select);
}

void cnet_set_default_auto_select_family(bool enable) {
  atomic_store(&default_auto_select, enable);
}

unsigned cnet_get_default_auto_select_family_attempt_timeout(void) {
  return atomic_load(&default_attempt_timeout);
}

/* Node's validateInt32(value, name, 1), then 1..9 raised to 10. */
static int check_attempt_timeout(unsigned ms, const char *name,
                                 unsigned *out) {
  char received[32];

  if (ms == 0 || ms > INT32_MAX) {
    snprintf(received, sizeof(received), "%u", ms);
    return cnet__fail(CNET_ERR_OUT_OF_RANGE, name,
                      ">= 1 && <= 2147483647", received);
  }
  *out = ms < MIN_ATTEMPT_TIMEOUT ? MIN_ATTEMPT_TIMEOUT : ms;
  return 0;
}

int cnet_set_default_auto_select_family_attempt_timeout(unsigned ms) {
  unsigned v;
  int err = check_attempt_timeout(ms, "value", &v);

  if (err == 0)
    atomic_store(&default_attempt_timeout, v);
  return err;
}

/* ---- the state of one connect() ----------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
  cnet__connect_t *c = h->data;

  if (--c->open_timers != 0)
    return;
  cnet__free(c->dests);
  cnet__loop_put(c->loop);
  cnet__free(c);
}

static cnet__connect_t *connect_new(cnet_socket_t *s) {
  cnet__connect_t *c = cnet__calloc(1, sizeof(*c));

  if (c == NULL)
    return NULL;
  c->s = s;
  c->loop = s->loop;
  c->loop->refs++; /* the loop state outlives the timers' close callbacks */
  uv_timer_init(c->loop->uv, &c->stagger);
  uv_timer_init(c->loop->uv, &c->deadline);
  c->stagger.data = c->deadline.data = c;
  c->open_timers = 2;
  uv_unref((uv_handle_t *)&c->stagger); /* the socket's handle is the ref */
  uv_unref((uv_handle_t *)&c->deadline);
  return c;
}

static void attempt_closed(uv_handle_t *h) {
  cnet__free(container_of(h, cnet__attempt_t, poll));
}

/* Stop watching an attempt and close its descriptor at once (unless it was
 * handed over: fd -1), as closing a libuv stream does: an abandoned attempt
 * is gone before the next one starts (HE-06). uv_close() has stopped the
 * poll by the time it returns, so the descriptor is no longer watched. */
static void attempt_abandon(cnet__connect_t *c, cnet__attempt_t *a) {
  for (cnet__attempt_t **p = &c->attempts; *p != NULL; p = &(*p)->next) {
    if (*p == a) {
      *p = a->next;
      break;
    }
  }
  if (c->current == a)
    c->current = NULL;
  a->c = NULL;
  uv_close((uv_handle_t *)&a->poll, attempt_closed);
  if (a->fd >= 0)
    close(a->fd);
  a->fd = -1;
}

/* The socket lets go of its connect: on success, on failure, on destroy. */
static void connect_detach(cnet__connect_t *c) {
  if (c->s == NULL)
    return;
  c->s->extra->connect = NULL;
  c->s = NULL;
  c->lookup = NULL; /* its answer, when it comes, finds no connect */
  while (c->attempts != NULL)
    attempt_abandon(c, c->attempts);
  uv_close((uv_handle_t *)&c->stagger, on_timer_closed);
  uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
}

/* destroy() while connecting: attempts and timers stop, a late lookup
 * answer is dropped (DN-08). */
void cnet__connect_cancel(cnet_socket_t *s) {
  if (s->extra != NULL && s->extra->connect != NULL)
    connect_detach(s->extra->connect);
}

static void fail(cnet__connect_t *c, const cnet_error_t *err) {
  cnet_socket_t *s = c->s;

  connect_detach(c);
  cnet_socket_destroy(s, err);
}

/* ---- events ------------------------------------------------------------- */

/* Emits with the socket held; false when the listener destroyed it (the
 * connect is then detached: stop). */
static bool emit(cnet__connect_t *c, const cnet_event_t *ev) {
  cnet_socket_t *s = c->s;
  bool alive;

  cnet__socket_retain(s);
  cnet__socket_emit(s, ev);
  alive = c->s == s && !(s->flags & S_DESTROYED);
  cnet__socket_release(s);
  return alive;
}

static bool emit_attempt(cnet__connect_t *c, cnet_event_type_t type,
                         const dest_t *d, const cnet_error_t *err) {
  cnet_event_t ev = {.type = type};

  ev.attempt.address = d->ip;
  ev.attempt.port = c->port;
  ev.attempt.family = d->family;
  ev.attempt.error = err;
  return emit(c, &ev);
}

static bool emit_lookup(cnet__connect_t *c, const cnet_error_t *err,
                        const char *ip, int family) {
  cnet_event_t ev = {.type = CNET_EV_LOOKUP};

  ev.lookup.error = err;
  ev.lookup.address = ip;
  ev.lookup.family = family;
  ev.lookup.host = c->host;
  return emit(c, &ev);
}

/* ---- the attempt log (autoSelectFamilyAttemptedAddresses, errors) ------- */

/* The record attempt i will fill, while the log has room for it. */
static cnet__attempt_record_t *log_record_slot(cnet__connect_t *c,
                                               unsigned i) {
  cnet__extra_t *x = c->s->extra;

  return x != NULL && x->attempts != NULL && i < c->n_dests ? &x->attempts[i]
                                                           : NULL;
}

static void log_error(cnet__connect_t *c, unsigned i, const cnet_error_t *e) {
  cnet__attempt_record_t *r = log_record_slot(c, i);

  if (r != NULL) {
    r->error = *e;
    r->failed = true;
  }
}

/* Room for one record per destination; the attempted addresses fill in as
 * attempts start. */
static int log_open(cnet__connect_t *c) {
  cnet__extra_t *x = cnet__socket_extra(c->s);

  if (x == NULL)
    return UV_ENOMEM;
  cnet__free(x->attempts);
  x->attempts = cnet__calloc(c->n_dests, sizeof(*x->attempts));
  x->n_attempts = 0;
  return x->attempts != NULL ? 0 : UV_ENOMEM;
}

const char *cnet_socket_attempted_address(const cnet_socket_t *s, size_t i) {
  if (s == NULL || s->extra == NULL || i >= s->extra->n_attempts)
    return NULL;
  return s->extra->attempts[i].address;
}

const cnet_error_t *cnet_socket_attempt_error(const cnet_socket_t *s,
                                              size_t i) {
  if (s == NULL || s->extra == NULL || i >= s->extra->n_attempts ||
      !s->extra->attempts[i].failed)
    return NULL;
  return &s->extra->attempts[i].error;
}

/* Node's AggregateError has the first error's code and an empty message;
 * ours names every attempt and why it failed. */
static void aggregate_error(cnet__connect_t *c, cnet_error_t *out) {
  cnet__extra_t *x = c->s->extra;
  const cnet_error_t *first = NULL;
  size_t used = 0;

  for (unsigned i = 0; i < x->n_attempts; i++) {
    if (x->attempts[i].failed) {
      first = &x->attempts[i].error;
      break;
    }
  }
  if (first == NULL) { /* nothing failed as such (HE-09) */
    cnet__error_node(out, CNET_ERR_SOCKET_CONNECTION_TIMEOUT);
    return;
  }
  cnet__error_custom(out, first->errnum, "");
  out->code = first->code;
  for (unsigned i = 0; i < x->n_attempts; i++) {
    if (!x->attempts[i].failed || used >= sizeof(out->message) - 1)
      continue;
    used += (size_t)snprintf(out->message + used, sizeof(out->message) - used,
                             "%s%s", used != 0 ? "; " : "",
                             x->attempts[i].error.message);
  }
}

/* ---- attempts ----------------------------------------------------------- */

static void start_next(cnet__connect_t *c);
static void on_stagger(uv_timer_t *t);

/* Node's ExceptionWithHostPort for a connect: " - Local (a:p)" when the
 * attempt was bound to both a local address and port. */
static void connect_error(cnet__connect_t *c, const dest_t *d, int status,
                          cnet_error_t *out) {
  char details[CNET_ADDR_MAX + 16];

  if (c->local_port != 0) {
    snprintf(details, sizeof(details), "%s:%d", c->local_ip, c->local_port);
    cnet__error_host_port(out, status, "connect", d->ip, c->port, details);
    snprintf(out->local_address, sizeof(out->local_address), "%s",
             c->local_ip);
    out->local_port = c->local_port;
  } else {
    cnet__error_host_port(out, status, "connect", d->ip, c->port, NULL);
  }
}

/* Every attempt has failed or timed out. */
static void all_failed(cnet__connect_t *c) {
  cnet_error_t err;

  aggregate_error(c, &err);
  fail(c, &err);
}

/* One attempt failed (err). Single: the connect fails with it. Several: it
 * is logged and, with emitted set, reported; then the next one starts. */
static void attempt_failed(cnet__connect_t *c, unsigned i,
                           const cnet_error_t *err, bool report) {
  const dest_t *d = &c->dests[i];

  if (c->mode == MODE_SINGLE) {
    if (report &&
        !emit_attempt(c, CNET_EV_CONNECTION_ATTEMPT_FAILED, d, err))
      return;
    fail(c, err);
    return;
  }
  log_error(c, i, err);
  if (report && !emit_attempt(c, CNET_EV_CONNECTION_ATTEMPT_FAILED, d, err))
    return;
  if (c->mode == MODE_SEQUENTIAL)
    uv_timer_stop(&c->stagger);
  if (c->next < c->n_dests)
    start_next(c);
  else if (c->attempts == NULL)
    all_failed(c);
}

/* Destinations hold addresses without the port. */
static cnet__sockaddr_t dest_sockaddr(const cnet__connect_t *c,
                                      const dest_t *d) {
  cnet__sockaddr_t sa = d->sa;

  sa.in4.sin_port = htons((uint16_t)c->port); /* same place in sin6 */
  return sa;
}

static void attempt_won(cnet__connect_t *c, cnet__attempt_t *a) {
  cnet_socket_t *s = c->s;
  cnet__sockaddr_t remote = dest_sockaddr(c, &c->dests[a->index]);
  int fd = a->fd;
  int err;

  a->fd = -1; /* the socket's now */
  connect_detach(c); /* closes the other attempts and the timers */
  err = uv_tcp_open(&s->h.tcp, fd);
  if (err != 0) {
    close(fd);
    cnet__socket_destroy_errno(s, err, "connect");
    return;
  }
  cnet__socket_connected(s, &remote);
}

static void on_attempt_ready(uv_poll_t *poll, int status, int events) {
  cnet__attempt_t *a = container_of(poll, cnet__attempt_t, poll);
  cnet__connect_t *c = a->c;
  cnet__loop_t *L = c->loop;
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  cnet_error_t err;

  (void)events;
  cnet__loop_enter(L);
  uv_poll_stop(poll);
  if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
    so_error = errno;
  if (so_error == 0 && status < 0)
    so_error = -status;
  if (so_error == 0) {
    attempt_won(c, a);
  } else {
    unsigned i = a->index;
    connect_error(c, &c->dests[i], -so_error, &err);
    attempt_abandon(c, a);
    attempt_failed(c, i, &err, true);
  }
  cnet__loop_leave(L);
}

/* The descriptor of attempt i: bound as asked, connecting. 0, or fills err
 * (a bind error, or the connect call's own error, CE-05/CE-06). */
static int attempt_socket(cnet__connect_t *c, const dest_t *d, int *fd_out,
                          cnet_error_t *err) {
  cnet__sockaddr_t local, name, to = dest_sockaddr(c, d);
  socklen_t len;
  int fd, on = 1;
  char details[CNET_ADDR_MAX + 16];
  cnet_address_t shown;

  fd = socket(d->sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
              0);
  if (fd < 0) {
    connect_error(c, d, -errno, err);
    return -1;
  }
  if (c->has_local_address || c->local_port != 0) {
    /* Node binds to the local address, or the family's any-address when
     * only a port is given; libuv sets SO_REUSEADDR for every bind. */
    if (c->has_local_address) {
      local = c->local;
    } else {
      cnet__sockaddr_from_ip(&local, d->family == 6 ? "::" : "0.0.0.0", 0);
      snprintf(c->local_ip, sizeof(c->local_ip), "%s",
               d->family == 6 ? "::" : "0.0.0.0");
    }
    local.in4.sin_port = htons((uint16_t)c->local_port);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, &local.sa,
             local.sa.sa_family == AF_INET6 ? sizeof(local.in6)
                                            : sizeof(local.in4)) != 0) {
      cnet__error_host_port(err, -errno, "bind", c->local_ip, c->local_port,
                            NULL);
      close(fd);
      return -1;
    }
  }
  if (connect(fd, &to.sa, d->family == 6 ? sizeof(to.in6) : sizeof(to.in4)) ==
          0 ||
      errno == EINPROGRESS) {
    *fd_out = fd;
    return 0;
  }
  /* CE-05: a refusal by the connect call itself names the socket's own
   * local end, as Node's _getsockname() sees it. */
  {
    int e = -errno;
    len = sizeof(name);
    if (getsockname(fd, &name.sa, &len) == 0) {
      cnet__address_from_sockaddr(&shown, &name.sa);
      snprintf(details, sizeof(details), "%s:%d", shown.address, shown.port);
    } else {
      snprintf(details, sizeof(details), "undefined:undefined");
    }
    cnet__error_host_port(err, e, "connect", d->ip, c->port, details);
  }
  close(fd);
  return -1;
}

/* Starts the attempt at destination i. */
static void attempt_start(cnet__connect_t *c, unsigned i) {
  const dest_t *d = &c->dests[i];
  cnet__attempt_record_t *r;
  cnet__attempt_t *a;
  cnet_error_t err;
  int fd = -1;

  /* Attempts start in destination order: attempt i is destination i. */
  if ((r = log_record_slot(c, i)) != NULL) {
    snprintf(r->address, sizeof(r->address), "%s:%d", d->ip, c->port);
    c->s->extra->n_attempts = i + 1;
  }
  if (c->block_list != NULL &&
      cnet_block_list_check_sockaddr(c->block_list, &d->sa.sa)) {
    cnet__error_node(&err, CNET_ERR_IP_BLOCKED, d->ip);
    attempt_failed(c, i, &err, c->mode != MODE_SINGLE);
    return;
  }
  if (attempt_socket(c, d, &fd, &err) != 0) {
    /* A bind error comes before the attempt is announced (Node). */
    if (strcmp(err.syscall, "bind") == 0) {
      attempt_failed(c, i, &err, false);
      return;
    }
    if (!emit_attempt(c, CNET_EV_CONNECTION_ATTEMPT, d, NULL))
      return;
    /* Node reports a synchronous failure as connectionAttemptFailed only
     * when autoselecting. */
    attempt_failed(c, i, &err, c->mode != MODE_SINGLE);
    return;
  }
  if (!emit_attempt(c, CNET_EV_CONNECTION_ATTEMPT, d, NULL)) {
    close(fd);
    return;
  }
  a = cnet__xmalloc(sizeof(*a));
  a->c = c;
  a->index = i;
  a->fd = fd;
  a->next = c->attempts;
  c->attempts = a;
  c->current = a;
  uv_poll_init_socket(c->loop->uv, &a->poll, fd);
  uv_poll_start(&a->poll, UV_WRITABLE, on_attempt_ready);
  /* Sequential: every attempt but the last has attempt_timeout ms.
   * Parallel: the next one starts after that long unless this fails. */
  if (c->mode != MODE_SINGLE && c->next < c->n_dests)
    uv_timer_start(&c->stagger, on_stagger, c->attempt_timeout, 0);
}

static void start_next(cnet__connect_t *c) {
  attempt_start(c, c->next++);
}

static void on_stagger(uv_timer_t *t) {
  cnet__connect_t *c = t->data;
  cnet__loop_t *L = c->loop;
  cnet__attempt_t *a = c->current;
  cnet_error_t err;

  cnet__loop_enter(L);
  if (c->mode == MODE_SEQUENTIAL && a != NULL) {
    /* HE-06: abandoned; Node logs it as ETIMEDOUT and moves on. */
    unsigned i = a->index;
    attempt_abandon(c, a);
    connect_error(c, &c->dests[i], UV_ETIMEDOUT, &err);
    log_error(c, i, &err);
    if (emit_attempt(c, CNET_EV_CONNECTION_ATTEMPT_TIMEOUT, &c->dests[i],
                     NULL)) {
      if (c->next < c->n_dests)
        start_next(c);
      else
        all_failed(c);
    }
  } else if (c->next < c->n_dests) {
    start_next(c); /* parallel: the others keep going */
  }
  cnet__loop_leave(L);
}

static void run_deadline(cnet__connect_t *c) {
  cnet_error_t err;
  char where[CNET_ADDR_MAX]; /* the name, cut to what err.address holds */

  if (c->mode == MODE_SINGLE || c->s->extra == NULL ||
      c->s->extra->attempts == NULL) {
    const cnet__attempt_t *a = c->current;
    if (a != NULL) {
      connect_error(c, &c->dests[a->index], UV_ETIMEDOUT, &err);
    } else { /* still looking the name up */
      snprintf(where, sizeof(where), "%.*s", (int)sizeof(where) - 1, c->host);
      cnet__error_host_port(&err, UV_ETIMEDOUT, "connect", where, c->port,
                            NULL);
    }
    fail(c, &err);
    return;
  }
  /* Autoselecting: whatever is still running timed out. */
  while (c->attempts != NULL) {
    cnet__attempt_t *a = c->attempts;
    unsigned i = a->index;
    attempt_abandon(c, a);
    connect_error(c, &c->dests[i], UV_ETIMEDOUT, &err);
    log_error(c, i, &err);
    if (!emit_attempt(c, CNET_EV_CONNECTION_ATTEMPT_TIMEOUT, &c->dests[i],
                      NULL))
      return;
  }
  all_failed(c);
}

static void on_deadline(uv_timer_t *t) {
  cnet__connect_t *c = t->data;
  cnet__loop_t *L = c->loop;

  cnet__loop_enter(L);
  run_deadline(c);
  cnet__loop_leave(L);
}

/* ---- lookup ------------------------------------------------------------- */

static void dest_set(dest_t *d, const char *ip, int family) {
  /* Longer text is no IP anyway; it is only shown, cut, in messages. */
  snprintf(d->ip, sizeof(d->ip), "%.*s", (int)sizeof(d->ip) - 1,
           ip != NULL ? ip : "undefined");
  d->family = family;
  if (ip == NULL || cnet__sockaddr_from_ip(&d->sa, ip, 0) != 0)
    d->sa.sa.sa_family = AF_UNSPEC;
}

static bool dest_valid(const dest_t *d) {
  return d->sa.sa.sa_family != AF_UNSPEC &&
         (d->family == 4 || d->family == 6) &&
         (d->sa.sa.sa_family == AF_INET6) == (d->family == 6);
}

/* DN-06/DN-07: why an answer cannot be used. */
static void invalid_answer(cnet__connect_t *c, const dest_t *d,
                           cnet_error_t *err) {
  char what[CNET_HOST_MAX + 48];

  if (d->sa.sa.sa_family == AF_UNSPEC) {
    cnet__error_node(err, CNET_ERR_INVALID_IP_ADDRESS, d->ip);
  } else {
    snprintf(what, sizeof(what), "%d %s:%d", d->family, c->host, c->port);
    cnet__error_node(err, CNET_ERR_INVALID_ADDRESS_FAMILY, what);
    snprintf(err->hostname, sizeof(err->hostname), "%s", c->host);
    err->port = c->port;
  }
}

/* Starts connecting to the usable destinations now in c->dests. */
static void connect_dests(cnet__connect_t *c) {
  if (c->n_dests > 1 && log_open(c) != 0) {
    cnet__socket_destroy_errno(c->s, UV_ENOMEM, "connect");
    return;
  }
  if (c->n_dests == 1)
    c->mode = MODE_SINGLE; /* HE-04 */
  start_next(c);
}

/* HE-03: valid answers, each IP once, split by family; the family of the
 * first goes first, then the two alternate. */
static void order_dests(cnet__connect_t *c, const dest_t *in, size_t n) {
  int first = 0;
  unsigned k = 0;

  for (size_t i = 0; i < n; i++) {
    if (dest_valid(&in[i])) {
      first = in[i].family;
      break;
    }
  }
  for (size_t round = 0; k < n; round++) {
    bool any = false;
    for (int pass = 0; pass < 2; pass++) {
      int family = pass == 0 ? first : (first == 6 ? 4 : 6);
      size_t seen = 0;
      for (size_t i = 0; i < n; i++) {
        bool dup = false;
        if (!dest_valid(&in[i]) || in[i].family != family)
          continue;
        for (size_t j = 0; j < i; j++)
          dup = dup || (dest_valid(&in[j]) && strcmp(in[j].ip, in[i].ip) == 0);
        if (dup)
          continue;
        if (seen++ == round) {
          c->dests[k++] = in[i];
          any = true;
          break;
        }
      }
    }
    if (!any)
      break;
  }
  c->n_dests = k;
}

static void lookup_answered(cnet__connect_t *c, cnet_lookup_t *req) {
  cnet_error_t err;

  if (req->err != 0 || req->error != NULL) {
    if (req->error != NULL)
      err = *req->error;
    else
      cnet__error_dns(&err, req->err, c->host);
    if (emit_lookup(c, &err, NULL, 0))
      fail(c, &err);
    return;
  }
  if (c->mode == MODE_SINGLE) {
    const dest_t *d = &req->answers[0];
    if (!emit_lookup(c, NULL, d->ip, d->family))
      return;
    if (!dest_valid(d)) {
      invalid_answer(c, d, &err);
      fail(c, &err);
      return;
    }
    c->dests[0] = *d;
    c->n_dests = 1;
    connect_dests(c);
    return;
  }
  for (size_t i = 0; i < req->n; i++) /* DN-02: one per address */
    if (!emit_lookup(c, NULL, req->answers[i].ip, req->answers[i].family))
      return;
  order_dests(c, req->answers, req->n);
  if (c->n_dests == 0) {
    invalid_answer(c, &req->answers[0], &err);
    fail(c, &err);
    return;
  }
  connect_dests(c);
}

static void lookup_free(cnet_lookup_t *req) {
  cnet__free(req->answers);
  cnet__free(req->error);
  cnet__free(req);
}

static void run_lookup_answer(cnet__tick_t *t) {
  cnet_lookup_t *req = t->p1;
  cnet_socket_t *s = req->s;
  cnet__connect_t *c = s->extra->connect;

  if (c != NULL && c->lookup == req && !(s->flags & S_DESTROYED)) {
    c->lookup = NULL;
    if (req->n != 0 && (c->dests = cnet__calloc(req->n, sizeof(dest_t))) == NULL)
      cnet__socket_destroy_errno(s, UV_ENOMEM, "connect");
    else
      lookup_answered(c, req);
  }
  lookup_free(req); /* the tick drops the socket's reference */
}

/* Every answer is handled on a tick of its own, so a resolver that answers
 * inside connect() still has its 'lookup' delivered later (DESIGN). */
static void lookup_deliver(cnet_lookup_t *req) {
  cnet__socket_defer(req->s, run_lookup_answer, req, NULL, 0);
  cnet__socket_release(req->s); /* the tick holds its own now */
}

void cnet_lookup_done(cnet_lookup_t *req, int err,
                      const cnet_lookup_address_t *addrs, size_t n) {
  if (req == NULL)
    return;
  if (err > 0)
    err = UV_EAI_FAIL; /* not a code of ours: still a failed lookup */
  if (err == 0 && (n == 0 || addrs == NULL))
    err = UV_EAI_NONAME;
  req->err = err;
  if (err == 0) {
    req->answers = cnet__xmalloc(n * sizeof(dest_t));
    req->n = n;
    for (size_t i = 0; i < n; i++)
      dest_set(&req->answers[i], addrs[i].address, addrs[i].family);
  }
  lookup_deliver(req);
}

void cnet_lookup_fail(cnet_lookup_t *req, const cnet_error_t *err) {
  if (req == NULL)
    return;
  req->error = cnet__xmalloc(sizeof(*req->error));
  if (err != NULL)
    *req->error = *err;
  else
    cnet__error_dns(req->error, UV_EAI_FAIL, req->host);
  lookup_deliver(req);
}

uv_loop_t *cnet_lookup_loop(const cnet_lookup_t *req) {
  return req != NULL ? req->s->loop->uv : NULL;
}

static void on_system_answer(cnet__lookup_t *lk, int status,
                             struct addrinfo *res, void *data) {
  cnet_lookup_t *req = data;
  cnet_lookup_address_t *list = NULL;
  char(*text)[CNET_ADDR_MAX] = NULL;
  size_t n = 0;
  cnet_address_t a;

  (void)lk;
  for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
    n++;
  if (status == 0 && n != 0) {
    list = cnet__xmalloc(n * sizeof(*list));
    text = cnet__xmalloc(n * sizeof(*text));
    n = 0;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
        continue;
      cnet__address_from_sockaddr(&a, ai->ai_addr);
      memcpy(text[n], a.address, sizeof(text[n]));
      list[n].address = text[n];
      list[n].family = a.family;
      n++;
    }
  }
  if (res != NULL)
    uv_freeaddrinfo(res);
  cnet_lookup_done(req, status, list, n);
  cnet__free(list);
  cnet__free(text);
}

void cnet_lookup_system(cnet_lookup_t *req, const char *host,
                        const cnet_lookup_options_t *opts, void *ctx) {
  int err;

  (void)ctx;
  if (req == NULL)
    return;
  err = cnet__lookup(req->s->loop, host != NULL ? host : req->host,
                     opts != NULL ? opts->family : 0,
                     opts != NULL ? opts->hints : 0, on_system_answer, req);
  if (err != 0)
    cnet_lookup_done(req, err, NULL, 0);
}

static int start_lookup(cnet__connect_t *c, const cnet_connect_options_t *o,
                        bool all) {
  cnet_lookup_t *req = cnet__calloc(1, sizeof(*req));
  cnet_lookup_fn fn = o->lookup != NULL ? o->lookup : cnet_lookup_system;

  if (req == NULL)
    return UV_ENOMEM;
  req->s = c->s;
  snprintf(req->host, sizeof(req->host), "%s", c->host);
  req->opts.family = o->family;
  req->opts.hints = o->hints;
  /* DN-03: Node adds ADDRCONFIG when neither family nor hints are given. */
  if (o->family == 0 && o->hints == 0)
    req->opts.hints = CNET_ADDRCONFIG;
  req->opts.all = all;
  c->lookup = req;
  cnet__socket_retain(c->s); /* until the answer has been handled */
  fn(req, req->host, &req->opts, o->lookup_ctx);
  return 0;
}

/* ---- IPC ---------------------------------------------------------------- */

static void run_ipc_connected(cnet__tick_t *t) {
  cnet_socket_t *s = t->obj;
  cnet__connect_t *c = s->extra->connect;
  cnet_error_t err;

  if ((s->flags & S_DESTROYED) || c == NULL)
    return;
  if (t->status < 0) {
    cnet__error_host_port(&err, t->status, "connect", c->address, 0, NULL);
    fail(c, &err);
  } else {
    connect_detach(c);
    cnet__socket_connected(s, NULL);
  }
}

/* As uv_pipe_connect, but with the name's length (abstract names, no
 * truncation): a Unix connect is done or refused at once; the outcome is
 * delivered on the next tick, as libuv would. */
static void start_ipc(cnet_socket_t *s, const char *path, size_t len) {
  int fd;
  int err = cnet__connect_unix(path, len, &fd);

  cnet__pipe_display(s->extra->connect->address, path, len);
  if (fd >= 0) {
    int open_err = uv_pipe_open(&s->h.pipe, fd);
    if (open_err != 0) {
      close(fd);
      err = err < 0 ? err : open_err;
    }
  }
  cnet__socket_defer(s, run_ipc_connected, NULL, NULL, err < 0 ? err : 0);
}

/* ---- connect() ---------------------------------------------------------- */

/* DN-01: even for an IP literal the attempt waits one tick, so destroy()
 * right after connect() prevents it. */
static void run_literal(cnet__tick_t *t) {
  cnet_socket_t *s = t->obj;

  if (!(s->flags & S_DESTROYED) && s->extra->connect != NULL)
    connect_dests(s->extra->connect);
}

static int check_options(const cnet_socket_t *s,
                         const cnet_connect_options_t *o, int port,
                         size_t *path_len, unsigned *attempt_timeout) {
  char received[32];
  int err;

  if (s == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"socket\" argument",
                      "cnet_socket_t", "NULL");
  if (o == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"options\" argument",
                      "object", "NULL");
  if ((s->flags & (S_CONNECTING | S_CONNECTED | S_HANDLE_OPEN)) &&
      !((s->flags & S_DESTROYED) && !(s->flags & S_HANDLE_OPEN)))
    return cnet__fail_errno(UV_EBUSY, "connect");
  if (o->path != NULL && (s->flags & S_TCP_ONLY)) { /* decision 30 */
    char quoted[CNET_ADDR_MAX + 8];
    snprintf(quoted, sizeof(quoted), "'%.*s'", CNET_ADDR_MAX, o->path);
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.path'",
                      "cannot be used by a socket a TCP server accepted",
                      quoted);
  }
  if (o->path != NULL) {
    *path_len = o->path_len != 0 ? o->path_len : strlen(o->path);
    err = cnet__check_pipe_path(o->path, *path_len);
    return err != 0 ? cnet__fail_errno(err, "connect") : 0;
  }
  if (port == CNET__NO_PORT && o->port == 0) /* INT32_MIN given: bad port */
    return cnet__fail(CNET_ERR_MISSING_ARGS,
                      "\"options\" or \"port\" or \"path\"");
  if (o->local_address != NULL && cnet_is_ip(o->local_address) == 0)
    return cnet__fail(CNET_ERR_INVALID_IP_ADDRESS, o->local_address);
  if ((err = cnet__check_port(o->local_port, "options.localPort")) != 0)
    return err;
  if ((err = cnet__check_port(port, "Port")) != 0)
    return err;
  if (o->family != 0 && o->family != 4 && o->family != 6) {
    snprintf(received, sizeof(received), "%d", o->family);
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.family'",
                      "must be one of: 0, 4, 6", received);
  }
  if (o->hints & ~(CNET_ADDRCONFIG | CNET_V4MAPPED | CNET_ALL)) {
    snprintf(received, sizeof(received), "%d", o->hints);
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "argument 'hints'",
                      "is invalid", received);
  }
  if ((unsigned)o->auto_select_family > CNET_AUTO_SELECT_PARALLEL) {
    snprintf(received, sizeof(received), "%d", (int)o->auto_select_family);
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE,
                      "property 'options.autoSelectFamily'", "is invalid",
                      received);
  }
  *attempt_timeout = cnet_get_default_auto_select_family_attempt_timeout();
  if (o->auto_select_family_attempt_timeout != 0)
    return check_attempt_timeout(o->auto_select_family_attempt_timeout,
                                 "options.autoSelectFamilyAttemptTimeout",
                                 attempt_timeout);
  return 0;
}

/* HE-01/HE-02: which kind of connect a name gets. */
static int connect_mode(const cnet_connect_options_t *o) {
  cnet_auto_select_t a = o->auto_select_family;

  if (a == CNET_AUTO_SELECT_DEFAULT)
    a = cnet_get_default_auto_select_family() ? CNET_AUTO_SELECT_ON
                                              : CNET_AUTO_SELECT_OFF;
  if (a == CNET_AUTO_SELECT_OFF || o->family != 0 || o->local_address != NULL)
    return MODE_SINGLE;
  return a == CNET_AUTO_SELECT_PARALLEL ? MODE_PARALLEL : MODE_SEQUENTIAL;
}

/* A socket that closed may connect again: counters and state start over
 * (CN-18); listeners stay, and so does the flowing mode they set (Node's
 * _undestroy keeps readableFlowing: 'data' listeners hear the new
 * connection). */
static void reset_for_connect(cnet_socket_t *s) {
  uint32_t keep = S_TCP_ONLY | S_USER_REF | S_HALF_OPEN | S_UNREF |
                  S_NO_DELAY | S_KEEP_ALIVE | S_PAUSED | S_FLOWING;

  s->flags &= keep;
  cnet__channel_free(s); /* the new connect's options say again */
  if (s->extra != NULL) {
    cnet__free(s->extra->pending_error);
    s->extra->pending_error = NULL;
    cnet__free(s->extra->attempts);
    s->extra->attempts = NULL;
    s->extra->n_attempts = 0;
  }
  cnet__stream_reset(s);
}

static int init_handle(cnet_socket_t *s, bool ipc, bool channel) {
  int err = ipc ? uv_pipe_init(s->loop->uv, &s->h.pipe, channel)
                : uv_tcp_init(s->loop->uv, &s->h.tcp);

  if (err != 0)
    return err;
  s->flags |= S_HANDLE_OPEN | (ipc ? S_PIPE : 0);
  s->refs++; /* the open handle's reference, dropped after 'close' */
  if (s->flags & S_UNREF)
    uv_unref(&s->h.handle);
  return 0;
}

static void setup_tcp(cnet__connect_t *c, const cnet_connect_options_t *o,
                      int port, unsigned attempt_timeout) {
  c->port = port;
  c->mode = (uint8_t)connect_mode(o);
  c->attempt_timeout = attempt_timeout;
  c->connect_timeout = o->connect_timeout;
  c->block_list = o->block_list;
  c->local_port = o->local_port;
  if (o->local_address != NULL) {
    c->has_local_address = true;
    cnet__sockaddr_from_ip(&c->local, o->local_address, 0);
    snprintf(c->local_ip, sizeof(c->local_ip), "%s", o->local_address);
  } else if (c->local_port != 0) {
    snprintf(c->local_ip, sizeof(c->local_ip), "0.0.0.0");
  }
  snprintf(c->host, sizeof(c->host), "%s",
           o->host != NULL ? o->host : "localhost");
}

static int start_tcp(cnet__connect_t *c, const cnet_connect_options_t *o) {
  cnet_socket_t *s = c->s;
  int family = cnet_is_ip(c->host);

  if (c->connect_timeout != 0)
    uv_timer_start(&c->deadline, on_deadline,
                   c->connect_timeout > INT64_MAX ? INT64_MAX
                                                  : c->connect_timeout,
                   0);
  if (family != 0) { /* DN-01: no lookup, no 'lookup' */
    if ((c->dests = cnet__calloc(1, sizeof(dest_t))) == NULL)
      return UV_ENOMEM;
    dest_set(&c->dests[0], c->host, family);
    c->n_dests = 1;
    c->mode = MODE_SINGLE;
    cnet__socket_defer(s, run_literal, NULL, NULL, 0);
    return 0;
  }
  return start_lookup(c, o, c->mode != MODE_SINGLE);
}

static int connect_options(cnet_socket_t *s, const cnet_connect_options_t *o,
                           int port, cnet_socket_listener cb, void *ctx) {
  size_t path_len = 0;
  unsigned attempt_timeout = 0;
  cnet__connect_t *c;
  int err;

  if ((err = check_options(s, o, port, &path_len, &attempt_timeout)) != 0)
    return err;
  if (s->flags & S_DESTROYED)
    reset_for_connect(s);
  if (o->timeout != 0 &&
      (err = cnet_socket_set_timeout(s, o->timeout > INT64_MAX
                                            ? INT64_MAX
                                            : (int64_t)o->timeout,
                                     NULL, NULL)) != 0)
    return err;
  if (o->channel && o->path != NULL && !cnet__is_channel(s) &&
      cnet__channel_attach(s) != 0)
    return cnet__fail(UV_ENOMEM);
  if ((err = init_handle(s, o->path != NULL, cnet__is_channel(s))) != 0)
    return cnet__fail_errno(err, "connect");
  if (cnet__socket_extra(s) == NULL || (c = connect_new(s)) == NULL) {
    cnet__socket_destroy_errno(s, UV_ENOMEM, "connect");
    return 0;
  }
  s->extra->connect = c;
  if (o->no_delay)
    s->flags |= S_NO_DELAY;
  if (o->keep_alive)
    cnet_socket_set_keep_alive(s, true, o->keep_alive_initial_delay);
  if (cb != NULL)
    cnet_socket_once(s, CNET_EV_CONNECT, cb, ctx);
  s->flags |= S_CONNECTING;
  if (o->path != NULL) {
    start_ipc(s, o->path, path_len);
    return 0;
  }
  setup_tcp(c, o, port, attempt_timeout);
  if ((err = start_tcp(c, o)) != 0)
    cnet__socket_destroy_errno(s, err, "connect");
  return 0;
}

/* In the options form, port 0 means "not given" (zero is the default of
 * every option); only cnet_socket_connect_port can ask for port 0. */
int cnet_socket_connect(cnet_socket_t *s, const cnet_connect_options_t *opts,
                        cnet_socket_listener cb, void *ctx) {
  int port = opts != NULL && opts->port != 0 ? opts->port : CNET__NO_PORT;

  return connect_options(s, opts, port, cb, ctx);
}

/* PT-05: port 0 passes validation and fails at connect time. */
int cnet_socket_connect_port(cnet_socket_t *s, int port, const char *host,
                             cnet_socket_listener cb, void *ctx) {
  cnet_connect_options_t o = {.port = port, .host = host};

  return connect_options(s, &o, port, cb, ctx);
}

int cnet_socket_connect_path(cnet_socket_t *s, const char *path,
                             cnet_socket_listener cb, void *ctx) {
  cnet_connect_options_t o = {.path = path};

  if (path == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"path\" argument",
                      "string", "NULL");
  return cnet_socket_connect(s, &o, cb, ctx);
}

cnet_socket_t *cnet_create_connection(uv_loop_t *loop,
                                      const cnet_connect_options_t *opts,
                                      cnet_socket_listener connect_listener,
                                      void *ctx) {
  cnet_socket_options_t so = {0};
  cnet_socket_t *s;

  if (opts != NULL) {
    so.allow_half_open = opts->allow_half_open;
    so.high_water_mark = opts->high_water_mark;
    so.onread = opts->onread;
  }
  if ((s = cnet_socket_new(loop, &so)) == NULL)
    return NULL;
  if (cnet_socket_connect(s, opts, connect_listener, ctx) != 0) {
    cnet_socket_free(s);
    return NULL;
  }
  /* cnet owns it from here: the open handle keeps it until 'close'. */
  s->flags &= ~S_USER_REF;
  cnet__socket_release(s);
  return s;
}

cnet_socket_t *cnet_connect(uv_loop_t *loop, const cnet_connect_options_t *opts,
                            cnet_socket_listener connect_listener, void *ctx) {
  return cnet_create_connection(loop, opts, connect_listener, ctx);
}
