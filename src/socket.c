/* net.Socket: lifetime (references, destroy, 'close'), the end of a
 * connect, options, addresses and the listener API. Connecting is in
 * connect.c; the stream half -- reading, writing, ending, piping -- is in
 * stream.c. */
#include "internal.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- references and events -------------------------------------------- */

static void socket_invoke(void *self, cnet__any_fn fn, const cnet_event_t *ev,
                          void *ctx) {
  ((cnet_socket_listener)fn)((cnet_socket_t *)self, ev, ctx);
}

void cnet__socket_free_unreferenced(cnet_socket_t *s) {
  cnet__loop_t *L = s->loop;

  cnet__stream_free(s);
  if (s->extra != NULL) {
    cnet__free(s->extra->attempts);
    cnet__free(s->extra->pending_error);
  }
  cnet__channel_free(s);
  cnet__free(s->extra);
  cnet__emitter_free(&s->emitter);
  if (s->server != NULL)
    cnet__server_release(s->server);
  cnet__free(s);
  cnet__loop_put(L);
}

void cnet__socket_emit_to_listeners(cnet_socket_t *s,
                                    const cnet_event_t *ev) {
  s->refs++;
  cnet__emit(&s->emitter, s, ev, socket_invoke);
  cnet__socket_release(s);
}

void cnet__socket_emit_simple(cnet_socket_t *s, cnet_event_type_t type) {
  cnet_event_t ev = {.type = type};

  cnet__socket_emit(s, &ev);
}

static void release_tick_ref(void *obj) {
  cnet__socket_release(obj);
}

/* The tick holds a reference: the socket is alive while fn runs. */
cnet__tick_t *cnet__socket_defer(cnet_socket_t *s, cnet__tick_fn fn, void *p1,
                                 void *p2, int status) {
  cnet__tick_t *t = cnet__tick_new(s->loop, fn, s);

  t->done = release_tick_ref;
  t->p1 = p1;
  t->p2 = p2;
  t->status = status;
  s->refs++;
  cnet__tick_push(s->loop, t);
  return t;
}

cnet_socket_t *cnet__socket_alloc(cnet__loop_t *L, bool half_open,
                                  size_t hwm, bool tcp_only) {
  size_t size = tcp_only ? offsetof(cnet_socket_t, h) + sizeof(uv_tcp_t)
                         : sizeof(cnet_socket_t);
  cnet_socket_t *s = cnet__calloc(1, size);

  if (s == NULL)
    return NULL;
  if (tcp_only)
    s->flags |= S_TCP_ONLY;
  s->loop = L;
  cnet__emitter_init(&s->emitter);
  s->hwm = hwm != 0 && hwm <= UINT32_MAX ? (uint32_t)hwm : CNET__DEFAULT_HWM;
  if (half_open)
    s->flags |= S_HALF_OPEN;
  return s;
}

cnet__extra_t *cnet__socket_extra(cnet_socket_t *s) {
  if (s->extra == NULL)
    s->extra = cnet__calloc(1, sizeof(*s->extra));
  return s->extra;
}

/* Where the API has no way to report running out of memory. */
static cnet__extra_t *socket_xextra(cnet_socket_t *s) {
  if (s->extra == NULL) {
    s->extra = cnet__xmalloc(sizeof(*s->extra));
    memset(s->extra, 0, sizeof(*s->extra));
  }
  return s->extra;
}

int cnet_socket_set_onread(cnet_socket_t *s, const cnet_onread_t *onread) {
  cnet__extra_t *x;

  if (s == NULL)
    return cnet__fail(UV_EINVAL);
  if (onread != NULL &&
      (onread->callback == NULL ||
       (onread->buffer == NULL && onread->get_buffer == NULL) ||
       (onread->buffer != NULL && onread->len == 0)))
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.onread'",
                      "is invalid", "{ ... }");
  if (onread == NULL) {
    if (s->extra != NULL)
      s->extra->has_onread = false;
    return 0;
  }
  if ((x = cnet__socket_extra(s)) == NULL)
    return cnet__fail(UV_ENOMEM);
  x->onread = *onread;
  x->has_onread = true;
  return 0;
}

/* Node's guessHandleType() names. */
static const char *fd_type_name(uv_handle_type t) {
  switch (t) {
  case UV_TCP:
    return "TCP";
  case UV_NAMED_PIPE:
    return "PIPE";
  case UV_TTY:
    return "TTY";
  case UV_FILE:
    return "FILE";
  case UV_UDP:
    return "UDP";
  default:
    return "UNKNOWN";
  }
}

/* new net.Socket({fd}) takes only what Node's createHandle() takes: a TCP
 * socket, or a "pipe" (a Unix socket, a pipe or a FIFO). A channel passes
 * descriptors, which only a Unix socket can. */
static int check_fd(const cnet_socket_options_t *o, uv_handle_type *type) {
  struct stat st;

  if (o->fd < 0) { /* Node's validateInt32(fd, 'fd', 0) */
    char received[16];
    snprintf(received, sizeof(received), "%d", o->fd);
    return cnet__fail(CNET_ERR_OUT_OF_RANGE, "fd", ">= 0 && <= 2147483647",
                      received);
  }
  *type = uv_guess_handle(o->fd);
  if (*type != UV_TCP && *type != UV_NAMED_PIPE)
    return cnet__fail(CNET_ERR_INVALID_FD_TYPE, fd_type_name(*type));
  if (o->channel && (*type != UV_NAMED_PIPE || fstat(o->fd, &st) != 0 ||
                     !S_ISSOCK(st.st_mode)))
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.channel'",
                      "needs a Unix socket", fd_type_name(*type));
  return 0;
}

/* The directions a wrapped descriptor is used in (Node's readable and
 * writable options; neither given means both): a direction left out is
 * over from the start, as a Duplex made with readable/writable false. */
static int open_fd(cnet_socket_t *s, const cnet_socket_options_t *o,
                   uv_handle_type type) {
  cnet__loop_t *L = s->loop;
  bool ipc = type == UV_NAMED_PIPE;
  int err = ipc ? uv_pipe_init(L->uv, &s->h.pipe, o->channel)
                : uv_tcp_init(L->uv, &s->h.tcp);

  if (err != 0)
    return cnet__fail_errno(err, "open");
  s->flags |= S_HANDLE_OPEN | S_CONNECTED | (ipc ? S_PIPE : 0);
  s->refs++; /* the open handle's */
  if (o->channel && cnet__channel_attach(s) != 0)
    return cnet__fail(UV_ENOMEM);
  /* The last step that can fail: on failure the descriptor is still the
   * caller's (libuv has not taken it), as when Node throws. */
  err = ipc ? uv_pipe_open(&s->h.pipe, o->fd) : uv_tcp_open(&s->h.tcp, o->fd);
  if (err != 0)
    return cnet__fail_errno(err, "open");
  if (o->readable || o->writable) {
    if (!o->readable)
      s->flags |= S_EOF | S_END_EMITTED;
    if (!o->writable)
      s->flags |= S_ENDING | S_SHUTDOWN | S_FINISHED;
  }
  cnet__stream_connected(s); /* reads at once, as Node's read(0) */
  return 0;
}

cnet_socket_t *cnet_socket_new(uv_loop_t *loop,
                               const cnet_socket_options_t *opts) {
  static const cnet_socket_options_t defaults;
  uv_handle_type type = UV_UNKNOWN_HANDLE;
  cnet__loop_t *L;
  cnet_socket_t *s;

  if (opts == NULL)
    opts = &defaults;
  if (opts->wrap_fd && check_fd(opts, &type) != 0)
    return NULL;
  L = cnet__loop_get(loop);
  s = L != NULL ? cnet__socket_alloc(L, opts->allow_half_open,
                                     opts->high_water_mark, false)
                : NULL;
  if (s == NULL) {
    if (L != NULL)
      cnet__loop_put(L);
    cnet__fail(UV_ENOMEM);
    return NULL;
  }
  s->refs = 1;
  s->flags |= S_USER_REF;
  if ((opts->onread != NULL &&
       cnet_socket_set_onread(s, opts->onread) != 0) ||
      (opts->wrap_fd && open_fd(s, opts, type) != 0)) {
    cnet_error_t kept = *cnet_last_error();
    cnet_socket_free(s); /* the descriptor, not taken, stays the caller's */
    cnet__fail_error(&kept);
    return NULL;
  }
  return s;
}

/* ---- destroy and close ------------------------------------------------- */

/* EN-10: 'error' at most once, always before 'close'. With nobody listening
 * it goes to the unhandled-error handler instead of killing the process. */
static void emit_pending_error(cnet_socket_t *s) {
  cnet_error_t *err = s->extra != NULL ? s->extra->pending_error : NULL;
  cnet_event_t ev = {.type = CNET_EV_ERROR};

  if (err == NULL || (s->flags & S_ERROR_EMITTED))
    return;
  s->flags |= S_ERROR_EMITTED; /* the error stays: writes still failing
                                  after this get it (Node's errored) */
  ev.error = err;
  if (cnet__emitter_count(&s->emitter, CNET_EV_ERROR) == 0)
    cnet__unhandled_error("socket", err);
  else
    cnet__socket_emit(s, &ev);
}

static void run_pending_error(cnet__tick_t *t) {
  emit_pending_error(t->obj);
}

static void emit_close(cnet_socket_t *s) {
  cnet_event_t ev = {.type = CNET_EV_CLOSE};

  emit_pending_error(s);
  ev.close.had_error = (s->flags & S_HAD_ERROR) != 0;
  cnet__socket_emit(s, &ev);
}

static void run_close(cnet__tick_t *t) {
  emit_close(t->obj);
}

static void on_handle_closed(uv_handle_t *h) {
  cnet_socket_t *s = container_of(h, cnet_socket_t, h.handle);
  cnet__loop_t *L = s->loop;

  cnet__loop_enter(L);
  s->flags &= ~S_HANDLE_OPEN; /* a 'close' listener may connect again */
  emit_close(s);
  cnet__socket_release(s); /* the handle's reference */
  cnet__loop_leave(L);
}

void cnet_socket_destroy(cnet_socket_t *s, const cnet_error_t *err) {
  if (s == NULL || (s->flags & S_DESTROYED))
    return; /* idempotent, like Node's destroy() */
  s->flags |= S_DESTROYED;
  if (err != NULL) {
    cnet__extra_t *x = socket_xextra(s);
    x->pending_error = cnet__xmalloc(sizeof(*x->pending_error));
    *x->pending_error = *err;
    s->flags |= S_HAD_ERROR;
    cnet__socket_defer(s, run_pending_error, NULL, NULL, 0);
  }
  if (s->flags & S_COUNTED) {
    s->flags &= ~S_COUNTED;
    cnet__server_connection_gone(s);
  }
  cnet__stream_on_destroy(s);
  cnet__timeout_stop(s); /* TO-08; closes before the handle does */
  cnet__connect_cancel(s);
  s->flags &= ~S_CONNECTING;
  if (!(s->flags & S_HANDLE_OPEN))
    cnet__socket_defer(s, run_close, NULL, NULL, 0);
  else if (!(s->flags & S_RESET) ||
           uv_tcp_close_reset(&s->h.tcp, on_handle_closed) != 0)
    uv_close(&s->h.handle, on_handle_closed); /* cancels connect and writes */
}

/* DS-05..08. Node's _reset(): destroy, closing with RST (SO_LINGER 0). */
int cnet_socket_reset_and_destroy(cnet_socket_t *s) {
  cnet_error_t err;

  if (s == NULL)
    return cnet__fail(UV_EINVAL);
  if (s->flags & S_DESTROYED)
    return 0;
  if (!(s->flags & S_HANDLE_OPEN)) { /* DS-07 */
    cnet__error_node(&err, CNET_ERR_SOCKET_CLOSED);
    cnet_socket_destroy(s, &err);
    return 0;
  }
  if (s->flags & S_PIPE) /* DS-08, with Node's unhelpful message */
    return cnet__fail(CNET_ERR_INVALID_HANDLE_TYPE);
  s->flags |= S_RESET;
  if (!(s->flags & S_CONNECTING)) /* DS-06: else once connected */
    cnet_socket_destroy(s, NULL);
  return 0;
}

void cnet__socket_destroy_errno(cnet_socket_t *s, int err, const char *sys) {
  cnet_error_t e;

  cnet__error_errno(&e, err, sys);
  cnet_socket_destroy(s, &e);
}

void cnet_socket_free(cnet_socket_t *s) {
  if (s == NULL)
    return;
  cnet_socket_destroy(s, NULL);
  if (s->flags & S_USER_REF) {
    s->flags &= ~S_USER_REF;
    cnet__socket_release(s);
  }
}

void cnet_socket_retain(cnet_socket_t *s) {
  if (s != NULL)
    s->refs++;
}

void cnet_socket_release(cnet_socket_t *s) {
  if (s != NULL)
    cnet__socket_release(s);
}

/* ---- connecting (the rest is in connect.c) ----------------------------- */

static unsigned keep_alive_delay(const cnet_socket_t *s) {
  return s->extra != NULL ? s->extra->keep_alive_delay : 0;
}

void cnet__socket_apply_options(cnet_socket_t *s) {
  if (s->flags & S_PIPE)
    return;
  if (s->flags & S_NO_DELAY)
    uv_tcp_nodelay(&s->h.tcp, 1);
  if (s->flags & S_KEEP_ALIVE)
    uv_tcp_keepalive(&s->h.tcp, 1, keep_alive_delay(s));
}

void cnet__socket_connected(cnet_socket_t *s, const cnet__sockaddr_t *remote) {
  if (remote != NULL && s->extra != NULL) { /* a connect has an extra */
    s->extra->remote = *remote;
    s->flags |= S_REMOTE_KNOWN;
  }
  s->flags = (s->flags & ~S_CONNECTING) | S_CONNECTED;
  cnet__socket_apply_options(s);
  cnet__timeout_touch(s);
  cnet__socket_emit_simple(s, CNET_EV_CONNECT);
  if ((s->flags & (S_RESET | S_DESTROYED)) == S_RESET)
    cnet_socket_destroy(s, NULL); /* DS-06: reset once connected */
  /* CE-01: right after, even if a 'connect' listener destroyed it (Node) */
  cnet__socket_emit_simple(s, CNET_EV_READY);
  if (!(s->flags & S_DESTROYED))
    cnet__stream_connected(s);
}

/* ---- options ----------------------------------------------------------- */

void cnet_socket_set_no_delay(cnet_socket_t *s, bool no_delay) {
  if (s == NULL)
    return;
  if (no_delay == !!(s->flags & S_NO_DELAY))
    return; /* OP-01: the handle is called only on a change */
  s->flags ^= S_NO_DELAY;
  if ((s->flags & (S_CONNECTED | S_DESTROYED | S_PIPE)) == S_CONNECTED)
    uv_tcp_nodelay(&s->h.tcp, no_delay);
}

void cnet_socket_set_keep_alive(cnet_socket_t *s, bool enable,
                                unsigned initial_delay_ms) {
  unsigned delay;

  if (s == NULL)
    return;
  /* OP-03: whole seconds; 0 leaves the delay as it was. */
  delay = initial_delay_ms != 0 ? initial_delay_ms / 1000 : keep_alive_delay(s);
  if (enable == !!(s->flags & S_KEEP_ALIVE) && delay == keep_alive_delay(s))
    return;
  if (delay != keep_alive_delay(s)) {
    if (cnet__socket_extra(s) == NULL)
      return; /* out of memory: left as it was */
    s->extra->keep_alive_delay = delay;
  }
  s->flags = enable ? s->flags | S_KEEP_ALIVE : s->flags & ~S_KEEP_ALIVE;
  if ((s->flags & (S_CONNECTED | S_DESTROYED | S_PIPE)) == S_CONNECTED)
    uv_tcp_keepalive(&s->h.tcp, enable, delay);
}

void cnet_socket_ref(cnet_socket_t *s) {
  if (s == NULL)
    return;
  s->flags &= ~S_UNREF;
  if (s->flags & S_HANDLE_OPEN)
    uv_ref(&s->h.handle);
}

void cnet_socket_unref(cnet_socket_t *s) {
  if (s == NULL)
    return;
  s->flags |= S_UNREF;
  if (s->flags & S_HANDLE_OPEN)
    uv_unref(&s->h.handle);
}

/* ---- properties -------------------------------------------------------- */

bool cnet_socket_connecting(const cnet_socket_t *s) {
  return s != NULL && (s->flags & S_CONNECTING) != 0;
}

/* ST-02: no connection yet, still connecting, or destroyed. */
bool cnet_socket_pending(const cnet_socket_t *s) {
  return s == NULL || (s->flags & (S_CONNECTED | S_DESTROYED)) != S_CONNECTED;
}

bool cnet_socket_destroyed(const cnet_socket_t *s) {
  return s != NULL && (s->flags & S_DESTROYED) != 0;
}

/* Node's getter: readable until 'end', writable until end(), neither once
 * destroyed; a fresh socket is "open" (SC-01). */
const char *cnet_socket_ready_state(const cnet_socket_t *s) {
  bool readable, writable;

  if (s == NULL)
    return "closed";
  if (s->flags & S_CONNECTING)
    return "opening";
  readable = !(s->flags & (S_DESTROYED | S_END_EMITTED));
  writable = !(s->flags & (S_DESTROYED | S_ENDING));
  if (readable && writable)
    return "open";
  if (readable)
    return "readOnly";
  return writable ? "writeOnly" : "closed";
}

uint64_t cnet_socket_bytes_read(const cnet_socket_t *s) {
  return s != NULL ? s->bytes_read : 0;
}

uint64_t cnet_socket_bytes_written(const cnet_socket_t *s) {
  return s != NULL ? s->bytes_written : 0;
}

cnet_server_t *cnet_socket_server(const cnet_socket_t *s) {
  return s != NULL ? s->server : NULL;
}

static bool is_live_tcp(const cnet_socket_t *s) {
  return s != NULL &&
         (s->flags & (S_CONNECTED | S_DESTROYED | S_PIPE)) == S_CONNECTED;
}

int cnet_socket_address(const cnet_socket_t *s, cnet_address_t *out) {
  cnet__sockaddr_t sa;
  int len = sizeof(sa);
  int err;

  if (out == NULL)
    return cnet__fail(UV_EINVAL);
  memset(out, 0, sizeof(*out));
  if (!is_live_tcp(s))
    return UV_ENOTCONN; /* Node: {} */
  err = uv_tcp_getsockname(&s->h.tcp, &sa.sa, &len);
  if (err == 0)
    cnet__address_from_sockaddr(out, &sa.sa);
  return err;
}

int cnet_socket_remote_address(const cnet_socket_t *s, cnet_address_t *out) {
  cnet_socket_t *m = (cnet_socket_t *)s; /* the cache is not user-visible */
  cnet__sockaddr_t sa;
  int len = sizeof(sa);

  if (out == NULL)
    return cnet__fail(UV_EINVAL);
  memset(out, 0, sizeof(*out));
  if (s == NULL)
    return UV_ENOTCONN;
  if (!(s->flags & S_REMOTE_KNOWN)) {
    /* ST-06: asked while open, remembered after 'close', as Node does
     * (an accepted socket makes no getpeername nobody asked for). */
    if (!is_live_tcp(s) || uv_tcp_getpeername(&s->h.tcp, &sa.sa, &len) != 0)
      return UV_ENOTCONN;
    if (cnet__socket_extra(m) == NULL) {
      cnet__address_from_sockaddr(out, &sa.sa); /* not kept */
      return 0;
    }
    m->extra->remote = sa;
    m->flags |= S_REMOTE_KNOWN;
  }
  cnet__address_from_sockaddr(out, &s->extra->remote.sa);
  return 0;
}

void cnet_socket_set_data(cnet_socket_t *s, void *data) {
  if (s != NULL)
    s->data = data;
}

void *cnet_socket_get_data(const cnet_socket_t *s) {
  return s != NULL ? s->data : NULL;
}

uv_loop_t *cnet_socket_loop(const cnet_socket_t *s) {
  return s != NULL ? s->loop->uv : NULL;
}

/* ---- listeners --------------------------------------------------------- */

static int socket_add(cnet_socket_t *s, cnet_event_type_t type,
                      cnet_socket_listener fn, void *ctx, bool once,
                      bool prepend) {
  int err;

  if (s == NULL || fn == NULL || (unsigned)type >= CNET_EV_COUNT_)
    return cnet__fail(UV_EINVAL);
  err = cnet__emitter_add(&s->emitter, type, (cnet__any_fn)fn, ctx, once,
                          prepend);
  /* Node: the first 'data' listener starts the flow, unless paused. */
  if (err == 0 && type == CNET_EV_DATA &&
      !(s->flags & (S_FLOWING | S_PAUSED)))
    cnet_socket_resume(s);
  return err;
}

int cnet_socket_on(cnet_socket_t *s, cnet_event_type_t type,
                   cnet_socket_listener fn, void *ctx) {
  return socket_add(s, type, fn, ctx, false, false);
}

int cnet_socket_once(cnet_socket_t *s, cnet_event_type_t type,
                     cnet_socket_listener fn, void *ctx) {
  return socket_add(s, type, fn, ctx, true, false);
}

int cnet_socket_prepend_listener(cnet_socket_t *s, cnet_event_type_t type,
                                 cnet_socket_listener fn, void *ctx) {
  return socket_add(s, type, fn, ctx, false, true);
}

int cnet_socket_off(cnet_socket_t *s, cnet_event_type_t type,
                    cnet_socket_listener fn, void *ctx) {
  if (s == NULL)
    return cnet__fail(UV_EINVAL);
  cnet__emitter_remove(&s->emitter, type, (cnet__any_fn)fn, ctx);
  return 0;
}

size_t cnet_socket_listener_count(const cnet_socket_t *s,
                                  cnet_event_type_t type) {
  return s != NULL ? cnet__emitter_count(&s->emitter, type) : 0;
}
