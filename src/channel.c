/* Channels: messages, and sockets or servers with them, between processes
 * over a Unix socket -- what child_process's send(message, handle) does.
 * The wire protocol is in cnet.h; descriptors travel with libuv's handle
 * passing (uv_write2 on an ipc pipe, uv_accept on the other end).
 *
 * Ownership is what matters here: a descriptor sent stays the sender's
 * until the receiver acks it (it has become an object there); only then is
 * the sender's copy closed. If the channel dies first the sender keeps it.
 * Acks come in the order the descriptors were sent, so the oldest send
 * waiting for one is the one acked. */
#include "internal.h"

#include <unistd.h>

#define HEADER_LEN 8

enum { KIND_MESSAGE, KIND_SOCKET, KIND_SERVER, KIND_ACK };

typedef struct cnet__send_s cnet__send_t;

/* A libuv stream handle of either kind, for a descriptor that travels. */
typedef union {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} any_stream_t;

struct cnet__send_s {
  uv_write_t req;
  cnet__send_t *next; /* waiting for an ack, oldest first */
  cnet_socket_t *ch;
  cnet_socket_t *sock;
  cnet_server_t *srv;
  any_stream_t *dup; /* the server's listening socket, duplicated to be sent */
  cnet_send_cb cb;
  void *ctx;
  bool keep_open;
  bool written; /* uv_write2's callback has run */
  bool acked;
  bool done;    /* the outcome is decided; cb scheduled */
  bool called;  /* cb has run: x goes once written too */
  cnet_error_t error;
  size_t len;
  char frame[]; /* header and payload */
};

struct cnet__channel_s {
  char *buf; /* the bytes of a frame not complete yet */
  size_t len, cap;
  cnet__send_t *acks_head, *acks_tail;
};

static cnet__channel_t *channel_of(const cnet_socket_t *s) {
  return s != NULL && s->extra != NULL ? s->extra->channel : NULL;
}

bool cnet__is_channel(const cnet_socket_t *s) {
  return channel_of(s) != NULL;
}

int cnet__channel_attach(cnet_socket_t *s) {
  cnet__extra_t *x = cnet__socket_extra(s);

  if (x == NULL || (x->channel = cnet__calloc(1, sizeof(*x->channel))) == NULL)
    return UV_ENOMEM;
  s->flags |= S_FLOWING; /* a channel always reads: messages, acks */
  return 0;
}

void cnet__channel_free(cnet_socket_t *s) {
  cnet__channel_t *c = channel_of(s);

  if (c != NULL) {
    cnet__free(c->buf);
    cnet__free(c);
    s->extra->channel = NULL;
  }
}

/* ---- sending ------------------------------------------------------------ */

static void call_send_cb(cnet__send_t *x) {
  if (x->cb != NULL)
    x->cb(x->ch, x->error.code != NULL ? &x->error : NULL, x->ctx);
  x->called = true;
  if (x->written) /* else on_sent frees it */
    cnet__free(x);
}

static void run_send_cb(cnet__tick_t *t) {
  call_send_cb(t->p1);
}

static void dup_closed(uv_handle_t *h) {
  cnet__free(h);
}

/* Calls cb once: at once from a libuv callback (so that the callback of a
 * send comes before any message the other end sent after taking it), on a
 * tick from inside a user's call (destroy). x is freed once libuv has also
 * let go of it. */
static void send_finish(cnet__send_t *x, const cnet_error_t *err, bool now) {
  if (x->done)
    return;
  x->done = true;
  if (err != NULL)
    x->error = *err;
  if (x->dup != NULL) {
    uv_close(&x->dup->handle, dup_closed);
    x->dup = NULL;
  }
  if (x->sock != NULL)
    cnet__socket_release(x->sock);
  if (x->srv != NULL)
    cnet__server_release(x->srv);
  x->sock = NULL;
  x->srv = NULL;
  if (now) {
    cnet_socket_t *ch = x->ch;
    cnet__socket_retain(ch);
    call_send_cb(x);
    cnet__socket_release(ch);
  } else {
    cnet__socket_defer(x->ch, run_send_cb, x, NULL, 0);
  }
}

/* Taken by the other end: the sender's copy goes (unless kept). */
static void handoff_done(cnet__send_t *x) {
  if (!x->keep_open) {
    if (x->sock != NULL)
      cnet_socket_destroy(x->sock, NULL);
    if (x->srv != NULL)
      cnet_server_close(x->srv, NULL, NULL);
  }
  send_finish(x, NULL, true);
}

static void unqueue_ack(cnet__channel_t *c, cnet__send_t *x) {
  for (cnet__send_t **p = &c->acks_head; *p != NULL; p = &(*p)->next) {
    if (*p == x) {
      *p = x->next;
      if (c->acks_tail == x) {
        c->acks_tail = NULL;
        for (cnet__send_t *y = c->acks_head; y != NULL; y = y->next)
          c->acks_tail = y;
      }
      return;
    }
  }
}

static void on_sent(uv_write_t *req, int status) {
  cnet__send_t *x = container_of(req, cnet__send_t, req);
  cnet_socket_t *ch = x->ch;
  cnet__loop_t *L = ch->loop;
  cnet_error_t err;

  cnet__loop_enter(L);
  x->written = true;
  if (x->called) { /* finished already (the channel went): only memory */
    cnet__free(x);
  } else if (x->done) {
    /* run_send_cb, still to come, frees it */
  } else if (status < 0) {
    cnet__channel_t *c = channel_of(ch);
    if (status == UV_ECANCELED)
      cnet__error_node(&err, CNET_ERR_IPC_CHANNEL_CLOSED);
    else
      cnet__error_errno(&err, status, "write");
    if (c != NULL)
      unqueue_ack(c, x);
    send_finish(x, &err, true);
  } else if (x->sock == NULL && x->srv == NULL) {
    send_finish(x, NULL, true);
  } else if (x->acked) {
    handoff_done(x);
  }
  cnet__socket_release(ch); /* the write's reference */
  cnet__loop_leave(L);
}

static void frame_header(char *h, int kind, size_t len) {
  h[0] = 'c';
  h[1] = 'N';
  h[2] = (char)kind;
  h[3] = 0;
  h[4] = (char)(len >> 24);
  h[5] = (char)(len >> 16);
  h[6] = (char)(len >> 8);
  h[7] = (char)len;
}

/* A duplicate of the server's listening socket as a libuv stream, which is
 * what uv_write2 sends. */
static int dup_listener(cnet__send_t *x) {
  int fd = cnet__dup(x->srv->lh->fd);
  int err;

  if (fd < 0)
    return fd;
  x->dup = cnet__xmalloc(sizeof(*x->dup));
  if (x->srv->flags & SV_PIPE) {
    uv_pipe_init(x->ch->loop->uv, &x->dup->pipe, 0);
    err = uv_pipe_open(&x->dup->pipe, fd);
  } else {
    uv_tcp_init(x->ch->loop->uv, &x->dup->tcp);
    err = uv_tcp_open(&x->dup->tcp, fd);
  }
  if (err != 0) {
    close(fd);
    uv_close(&x->dup->handle, dup_closed);
    x->dup = NULL;
  }
  return err;
}

static int send_frame(cnet_socket_t *ch, int kind, const void *data,
                      size_t len, cnet_socket_t *sock, cnet_server_t *srv,
                      const cnet_send_options_t *opts, cnet_send_cb cb,
                      void *ctx) {
  cnet__channel_t *c = channel_of(ch);
  cnet__send_t *x;
  uv_stream_t *handle = NULL;
  uv_buf_t buf;
  int err;

  if (c == NULL)
    return cnet__fail(UV_EINVAL);
  if (len > CNET_CHANNEL_MAX)
    return cnet__fail_errno(UV_EMSGSIZE, "send");
  if (data == NULL && len != 0)
    return cnet__fail(CNET_ERR_STREAM_NULL_VALUES);
  if ((ch->flags & (S_CONNECTED | S_DESTROYED | S_ENDING)) != S_CONNECTED)
    return cnet__fail(CNET_ERR_IPC_CHANNEL_CLOSED);
  if ((x = cnet__calloc(1, sizeof(*x) + HEADER_LEN + len)) == NULL)
    return cnet__fail(UV_ENOMEM);
  x->ch = ch;
  x->cb = cb;
  x->ctx = ctx;
  x->keep_open = opts != NULL && opts->keep_open;
  x->len = HEADER_LEN + len;
  frame_header(x->frame, kind, len);
  if (len != 0)
    memcpy(x->frame + HEADER_LEN, data, len);
  if (sock != NULL) {
    x->sock = sock;
    handle = &sock->h.stream;
  } else if (srv != NULL) {
    x->srv = srv;
    if ((err = dup_listener(x)) != 0) {
      cnet__free(x);
      return cnet__fail_errno(err, "send");
    }
    handle = &x->dup->stream;
  }
  buf = cnet__buf(x->frame, (unsigned)x->len);
  err = uv_write2(&x->req, &ch->h.stream, &buf, 1, handle, on_sent);
  if (err != 0) {
    if (x->dup != NULL)
      uv_close(&x->dup->handle, dup_closed);
    cnet__free(x);
    return cnet__fail_errno(err, "send");
  }
  cnet__socket_retain(ch);
  if (sock != NULL) {
    cnet__socket_retain(sock);
    cnet_socket_pause(sock); /* this process reads no more of it */
  }
  if (srv != NULL)
    cnet__server_retain(srv);
  if (handle != NULL) {
    if (c->acks_tail != NULL)
      c->acks_tail->next = x;
    else
      c->acks_head = x;
    c->acks_tail = x;
  }
  return 0;
}

int cnet_socket_send(cnet_socket_t *channel, const void *data, size_t len,
                     const cnet_send_options_t *opts, cnet_send_cb cb,
                     void *ctx) {
  return send_frame(channel, KIND_MESSAGE, data, len, NULL, NULL, opts, cb,
                    ctx);
}

int cnet_socket_send_socket(cnet_socket_t *channel, const void *data,
                            size_t len, cnet_socket_t *socket,
                            const cnet_send_options_t *opts, cnet_send_cb cb,
                            void *ctx) {
  if (channel_of(channel) == NULL)
    return cnet__fail(UV_EINVAL);
  if (socket == NULL || socket == channel || cnet__is_channel(socket) ||
      (socket->flags & (S_CONNECTED | S_DESTROYED | S_HANDLE_OPEN)) !=
          (S_CONNECTED | S_HANDLE_OPEN))
    return cnet__fail(CNET_ERR_INVALID_HANDLE_TYPE);
  return send_frame(channel, KIND_SOCKET, data, len, socket, NULL, opts, cb,
                    ctx);
}

int cnet_socket_send_server(cnet_socket_t *channel, const void *data,
                            size_t len, cnet_server_t *server,
                            const cnet_send_options_t *opts, cnet_send_cb cb,
                            void *ctx) {
  if (channel_of(channel) == NULL)
    return cnet__fail(UV_EINVAL);
  if (server == NULL || server->lh == NULL ||
      !(server->flags & SV_LISTENING))
    return cnet__fail(CNET_ERR_SERVER_NOT_RUNNING);
  return send_frame(channel, KIND_SERVER, data, len, NULL, server, opts, cb,
                    ctx);
}

/* The channel is going: every send still waiting fails, and what it
 * carried stays the sender's. */
void cnet__channel_on_destroy(cnet_socket_t *s) {
  cnet__channel_t *c = channel_of(s);
  cnet_error_t err;

  if (c == NULL)
    return;
  cnet__error_node(&err, CNET_ERR_IPC_CHANNEL_CLOSED);
  while (c->acks_head != NULL) {
    cnet__send_t *x = c->acks_head;
    c->acks_head = x->next;
    send_finish(x, &err, false);
  }
  c->acks_tail = NULL;
}

/* ---- receiving ---------------------------------------------------------- */

static void protocol_error(cnet_socket_t *ch) {
  cnet__socket_destroy_errno(ch, UV_EPROTO, "read");
}

/* The oldest send waiting for an ack has been taken. */
static void on_ack(cnet_socket_t *ch, cnet__channel_t *c) {
  cnet__send_t *x = c->acks_head;

  if (x == NULL) {
    protocol_error(ch);
    return;
  }
  c->acks_head = x->next;
  if (c->acks_head == NULL)
    c->acks_tail = NULL;
  x->acked = true;
  if (x->written)
    handoff_done(x);
}

/* A socket from the pending descriptor: like an accepted one. */
static cnet_socket_t *take_socket(cnet_socket_t *ch, uv_handle_type type) {
  cnet__loop_t *L = ch->loop;
  bool ipc = type == UV_NAMED_PIPE;
  cnet_socket_t *s = cnet__socket_alloc(L, false, 0, !ipc);
  int err;

  if (s == NULL)
    return NULL;
  L->refs++;
  err = ipc ? uv_pipe_init(L->uv, &s->h.pipe, 0)
            : uv_tcp_init(L->uv, &s->h.tcp);
  s->refs = 1; /* the open handle's */
  s->flags |= S_HANDLE_OPEN | S_CONNECTED | (ipc ? S_PIPE : 0);
  if (err == 0)
    err = uv_accept(&ch->h.stream, &s->h.stream);
  if (err != 0) {
    cnet_socket_destroy(s, NULL);
    return NULL;
  }
  return s;
}

static void take_closed(uv_handle_t *h) {
  cnet__free(h);
}

/* A listening server from the pending descriptor. */
static cnet_server_t *take_server(cnet_socket_t *ch, uv_handle_type type) {
  cnet__loop_t *L = ch->loop;
  any_stream_t *h = cnet__xmalloc(sizeof(*h));
  cnet_server_t *srv = NULL;
  uv_os_fd_t fd;
  int own = -1;

  if (type == UV_NAMED_PIPE)
    uv_pipe_init(L->uv, &h->pipe, 0);
  else
    uv_tcp_init(L->uv, &h->tcp);
  if (uv_accept(&ch->h.stream, &h->stream) == 0 &&
      uv_fileno(&h->handle, &fd) == 0)
    own = cnet__dup(fd);
  uv_close(&h->handle, take_closed); /* closes libuv's copy */
  if (own < 0)
    return NULL;
  srv = cnet_create_server(L->uv, NULL, NULL, NULL);
  if (srv == NULL || cnet_server_listen_fd(srv, own, 0, NULL, NULL) != 0) {
    close(own);
    cnet_server_free(srv);
    return NULL;
  }
  return srv;
}

static void send_ack(cnet_socket_t *ch) {
  send_frame(ch, KIND_ACK, NULL, 0, NULL, NULL, NULL, NULL, NULL);
}

/* One whole frame. False when the channel was destroyed meanwhile. */
static bool on_frame(cnet_socket_t *ch, cnet__channel_t *c, int kind,
                     const char *payload, size_t len) {
  cnet_event_t ev = {.type = CNET_EV_MESSAGE};

  if (kind == KIND_ACK) {
    if (len != 0)
      protocol_error(ch);
    else
      on_ack(ch, c);
    return !(ch->flags & S_DESTROYED);
  }
  if (kind != KIND_MESSAGE) {
    uv_handle_type type;

    if (uv_pipe_pending_count(&ch->h.pipe) < 1) {
      protocol_error(ch);
      return false;
    }
    type = uv_pipe_pending_type(&ch->h.pipe);
    if (kind == KIND_SOCKET)
      ev.message.socket = take_socket(ch, type);
    else
      ev.message.server = take_server(ch, type);
    send_ack(ch); /* taken: the sender may let go of its copy */
  }
  ev.message.data = payload;
  ev.message.len = len;
  if (ev.message.socket != NULL)
    cnet__socket_retain(ev.message.socket);
  if (cnet__emitter_count(&ch->emitter, CNET_EV_MESSAGE) != 0) {
    cnet__socket_emit(ch, &ev);
  } else { /* nobody to own them */
    if (ev.message.socket != NULL)
      cnet_socket_destroy(ev.message.socket, NULL);
    if (ev.message.server != NULL)
      cnet_server_free(ev.message.server);
  }
  if (ev.message.socket != NULL) {
    cnet__stream_maybe_read(ev.message.socket);
    cnet__socket_release(ev.message.socket);
  }
  return !(ch->flags & S_DESTROYED);
}

static size_t frame_length(const unsigned char *h) {
  return (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
}

/* Parses whole frames from p; returns how many bytes were used, or
 * (size_t)-1 when the channel is gone. */
static size_t parse(cnet_socket_t *ch, cnet__channel_t *c, const char *p,
                    size_t n) {
  size_t used = 0;

  while (n - used >= HEADER_LEN) {
    const unsigned char *h = (const unsigned char *)p + used;
    size_t len = frame_length(h);

    if (h[0] != 'c' || h[1] != 'N' || h[2] > KIND_ACK || h[3] != 0 ||
        len > CNET_CHANNEL_MAX) {
      protocol_error(ch);
      return (size_t)-1;
    }
    if (n - used - HEADER_LEN < len)
      break;
    if (!on_frame(ch, c, h[2], p + used + HEADER_LEN, len))
      return (size_t)-1;
    used += HEADER_LEN + len;
  }
  return used;
}

/* Bytes read on a channel (instead of 'data'). Whole frames are handled
 * where they lie; a partial one waits in the channel's buffer. */
void cnet__channel_input(cnet_socket_t *ch, const char *base, size_t n) {
  cnet__channel_t *c = channel_of(ch);
  size_t used;

  if (c->len == 0) {
    if ((used = parse(ch, c, base, n)) == (size_t)-1)
      return;
    base += used;
    n -= used;
    if (n == 0)
      return;
  }
  if (c->len + n > c->cap) {
    size_t cap = c->cap != 0 ? c->cap : 256;
    char *p;
    while (cap < c->len + n)
      cap *= 2;
    if ((p = cnet__realloc(c->buf, cap)) == NULL) {
      cnet__socket_destroy_errno(ch, UV_ENOMEM, "read");
      return;
    }
    c->buf = p;
    c->cap = cap;
  }
  memcpy(c->buf + c->len, base, n);
  c->len += n;
  if ((used = parse(ch, c, c->buf, c->len)) == (size_t)-1)
    return;
  if (channel_of(ch) != c)
    return;
  memmove(c->buf, c->buf + used, c->len - used);
  c->len -= used;
  if (c->len == 0) { /* an idle channel keeps no buffer */
    cnet__free(c->buf);
    c->buf = NULL;
    c->cap = 0;
  }
}
