/* Channels: messages, sockets and servers handed between processes (issue 7,
 * "Handing over"; include/cnet.h, "Channels: messages and descriptors
 * between processes").
 *
 * Most cases run real processes: the test makes socketpair(AF_UNIX,
 * SOCK_STREAM), keeps one end (wrapped with the socket option channel) and
 * fork/execs $CNET_BUILD_DIR/helper-channel with the other end's number
 * (test/helper-channel.c says what each of its modes does). Plain clients
 * that must not be cnet run in forked processes of their own. Every child
 * is bounded: it is recorded and killed at exit, the kernel kills it when
 * the test process dies (PR_SET_PDEATHSIG, which also covers a failed
 * assertion's _exit), and it has its own alarm.
 *
 * Ownership is checked by counting /proc/self/fd: a socket handed over
 * leaves this process's count as it was before the connection came, unless
 * keep_open; nothing is left when a case ends. */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>

/* Byte i of what test clients send (helper-channel.c has the same). */
static unsigned char pattern_byte(size_t i) {
  return (unsigned char)(i % 251u);
}

static size_t unread_bytes(int fd) {
  int n = -1;

  ASSERT_EQ(0, ioctl(fd, FIONREAD, &n));
  ASSERT_GE(n, 0);
  return (size_t)n;
}

/* ---- child processes ------------------------------------------------------
 */

#define MAX_CHILDREN 16

static pid_t CHILDREN[MAX_CHILDREN];
static pid_t CHILDREN_OWNER; /* the process whose children these are */

static void kill_children(void) {
  if (CHILDREN_OWNER != getpid())
    return;
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (CHILDREN[i] > 0) {
      kill(CHILDREN[i], SIGKILL);
      waitpid(CHILDREN[i], NULL, 0);
      CHILDREN[i] = 0;
    }
}

static void track(pid_t pid) {
  if (CHILDREN_OWNER != getpid()) {
    memset(CHILDREN, 0, sizeof(CHILDREN));
    CHILDREN_OWNER = getpid();
    atexit(kill_children); /* a passing case; a failing one _exits, and
                              PR_SET_PDEATHSIG kills the children then */
  }
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (CHILDREN[i] == 0) {
      CHILDREN[i] = pid;
      return;
    }
  kill(pid, SIGKILL);
  FAIL("too many children");
}

static void untrack(pid_t pid) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (CHILDREN[i] == pid)
      CHILDREN[i] = 0;
}

/* In a new child, before anything else: die with the parent (also when it
 * _exits on a failed assertion), and keep none of its descriptors but
 * stdio and `keep`. Only _exit() from here on: atexit handlers are the
 * parent's. */
static void child_start(pid_t parent, int keep) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
    _exit(98);
  for (int fd = 3; fd < 1024; fd++)
    if (fd != keep)
      close(fd);
  alarm(9);
}

static const char *helper_path(void) {
  static char path[4096];
  const char *dir = getenv("CNET_BUILD_DIR");

  if (dir != NULL && dir[0] != '\0') {
    snprintf(path, sizeof(path), "%s/helper-channel", dir);
  } else { /* run by hand: next to this executable */
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
    char *slash;

    ASSERT_GT(n, 0);
    path[n] = '\0';
    slash = strrchr(path, '/');
    ASSERT_NOT_NULL(slash);
    strcpy(slash + 1, "helper-channel");
  }
  if (access(path, X_OK) != 0)
    FAIL("%s: %s (build the helpers: cmake --build)", path, strerror(errno));
  return path;
}

/* fork/exec helper-channel MODE FD [args...] (NULL-terminated). *channel_fd
 * gets this process's end of the socketpair (close-on-exec, so no other
 * child inherits it: the channel closes when this child goes). */
static pid_t spawn_helper(int *channel_fd, const char *mode, ...) {
  const char *path = helper_path();
  const char *argv[16];
  char fdnum[16];
  int argc = 0, sv[2];
  pid_t parent = getpid(), pid;
  va_list ap;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_EQ(0, fcntl(sv[0], F_SETFD, FD_CLOEXEC));
  snprintf(fdnum, sizeof(fdnum), "%d", sv[1]);
  argv[argc++] = path;
  argv[argc++] = mode;
  argv[argc++] = fdnum;
  va_start(ap, mode);
  for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
    ASSERT(argc < (int)ARRAY_LEN(argv) - 1);
    argv[argc++] = a;
  }
  va_end(ap);
  argv[argc] = NULL;

  fflush(stdout);
  fflush(stderr);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    child_start(parent, sv[1]);
    execv(path, (char *const *)argv);
    _exit(127);
  }
  track(pid);
  close(sv[1]);
  *channel_fd = sv[0];
  return pid;
}

/* A plain client in a process of its own: connects to 127.0.0.1:port, sends
 * n pattern bytes at once, then reads to EOF and exits 0 iff it read
 * exactly `reply`. */
static pid_t fork_client(int port, size_t n, const char *reply) {
  pid_t parent = getpid(), pid;

  fflush(stdout);
  fflush(stderr);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct sockaddr_in sa;
    unsigned char *buf;
    char got[256];
    size_t len = 0, off = 0;
    int fd;

    child_start(parent, -1);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
      perror("client: connect");
      _exit(10);
    }
    buf = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
      buf[i] = pattern_byte(i);
    while (off < n) {
      ssize_t w = write(fd, buf + off, n - off);
      if (w <= 0) {
        perror("client: write");
        _exit(11);
      }
      off += (size_t)w;
    }
    free(buf);
    for (;;) {
      ssize_t r = read(fd, got + len, sizeof(got) - 1 - len);
      if (r < 0) {
        perror("client: read");
        _exit(12);
      }
      if (r == 0)
        break;
      len += (size_t)r;
      if (len == sizeof(got) - 1)
        break;
    }
    got[len] = '\0';
    if (len != strlen(reply) || memcmp(got, reply, len) != 0) {
      fprintf(stderr, "client: read \"%s\", expected \"%s\"\n", got, reply);
      _exit(13);
    }
    _exit(0);
  }
  track(pid);
  return pid;
}

/* Wait (at most ms) for a child to end; its wait status. */
static int reap(pid_t pid, unsigned ms) {
  for (unsigned waited = 0;; waited++) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);

    if (r == pid) {
      untrack(pid);
      return st;
    }
    ASSERT(r == 0);
    if (waited >= ms)
      FAIL("child %ld still running after %u ms", (long)pid, ms);
    usleep(1000);
  }
}

#define ASSERT_EXITED_0(st)                                                    \
  do {                                                                         \
    int st_ = (st);                                                            \
    if (!WIFEXITED(st_) || WEXITSTATUS(st_) != 0)                              \
      FAIL("child: %s %d",                                                     \
           WIFEXITED(st_) ? "exit status" : "killed by signal",                \
           WIFEXITED(st_) ? WEXITSTATUS(st_) : WTERMSIG(st_));                 \
  } while (0)

/* A child's exit, seen from the loop (polled: a SIGCHLD handler would open
 * descriptors of its own and spoil the counts). */
typedef struct {
  uv_timer_t timer; /* first: the handle is the allocation */
  pid_t pid;
  void (*cb)(int status, void *arg);
  void *arg;
} watch_t;

static void watch_closed(uv_handle_t *h) {
  free(h);
}

static void watch_tick(uv_timer_t *t) {
  watch_t *w = (watch_t *)t;
  int st;

  if (waitpid(w->pid, &st, WNOHANG) != w->pid)
    return;
  untrack(w->pid);
  uv_close((uv_handle_t *)t, watch_closed);
  w->cb(st, w->arg);
}

static void watch_exit(uv_loop_t *loop, pid_t pid,
                       void (*cb)(int status, void *arg), void *arg) {
  watch_t *w = malloc(sizeof(*w));

  ASSERT_NOT_NULL(w);
  w->pid = pid;
  w->cb = cb;
  w->arg = arg;
  ASSERT_EQ(0, uv_timer_init(loop, &w->timer));
  ASSERT_EQ(0, uv_timer_start(&w->timer, watch_tick, 2, 2));
}

/* ---- channels ---------------------------------------------------------------
 */

static cnet_socket_t *channel_wrap(uv_loop_t *loop, int fd) {
  cnet_socket_options_t o = {.wrap_fd = true, .fd = fd, .channel = true};
  cnet_socket_t *s = cnet_socket_new(loop, &o);

  if (s == NULL)
    FAIL("wrapping fd %d as a channel: %s", fd, cnet_last_error()->message);
  return s;
}

static bool message_is(const cnet_event_t *ev, const char *text) {
  size_t n = strlen(text);

  return ev->message.len == n && memcmp(ev->message.data, text, n) == 0;
}

static bool IN_SEND; /* set around send calls: callbacks never run inside */

static int send_text(cnet_socket_t *ch, const char *text, cnet_send_cb cb,
                     void *ctx) {
  int r;

  IN_SEND = true;
  r = cnet_socket_send(ch, text, strlen(text), NULL, cb, ctx);
  IN_SEND = false;
  return r;
}

/* What happened to a channel or a socket, for the checks at the end. */
typedef struct {
  int ends, closes, errors, messages;
  bool had_error;
  cnet_error_t error;
  trace_t trace;
} seen_t;

static void seen_event(seen_t *w, const cnet_event_t *ev) {
  char word[96];

  switch (ev->type) {
  case CNET_EV_END:
    w->ends++;
    trace_add(&w->trace, "end");
    break;
  case CNET_EV_CLOSE:
    w->closes++;
    w->had_error = ev->close.had_error;
    trace_add(&w->trace, ev->close.had_error ? "close(true)" : "close(false)");
    break;
  case CNET_EV_ERROR:
    w->errors++;
    w->error = *ev->error;
    snprintf(word, sizeof(word), "error:%s", ev->error->code);
    trace_add(&w->trace, word);
    break;
  case CNET_EV_MESSAGE:
    w->messages++;
    trace_add(&w->trace, "message");
    break;
  case CNET_EV_DATA:
    if (w->trace.len < 4 || strcmp(w->trace.buf + w->trace.len - 4, "data"))
      trace_add(&w->trace, "data");
    break;
  default:
    trace_add(&w->trace, cnet_event_name(ev->type));
    break;
  }
}

static void on_seen(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  seen_event(ctx, ev);
}

static void watch_socket(cnet_socket_t *s, seen_t *w) {
  static const cnet_event_type_t types[] = {CNET_EV_END, CNET_EV_ERROR,
                                            CNET_EV_CLOSE};

  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(s, types[i], on_seen, w));
}

/* ===== messages ============================================================
 */

#define RT_SMALL 2000
#define RT_BIG (1u << 20)

static struct {
  cnet_socket_t *ch;
  unsigned char all256[256];
  unsigned char *big;
  size_t next_rx, next_cb, total;
  seen_t seen;
} RT;

/* Message k of the conversation: 0 is the child's greeting, the rest are
 * what this process sends (and gets back, in order). */
static void rt_expected(size_t k, const void **data, size_t *len) {
  static char small[32];

  if (k == 0) {
    *data = "hello from child";
    *len = 16;
  } else if (k == 1) {
    *data = RT.all256; /* every byte value, NUL included */
    *len = sizeof(RT.all256);
  } else if (k == 2) {
    *data = ""; /* an empty message is a message */
    *len = 0;
  } else if (k == 3) {
    *data = RT.big;
    *len = RT_BIG;
  } else {
    *len = (size_t)snprintf(small, sizeof(small), "m%zu", k - 4);
    *data = small;
  }
}

static void rt_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  ASSERT(!IN_SEND);
  ASSERT(ch == RT.ch);
  if (err != NULL)
    FAIL("send %zu: %s", (size_t)(uintptr_t)ctx, err->message);
  ASSERT_EQ(RT.next_cb + 1, (uintptr_t)ctx); /* callbacks in order */
  RT.next_cb++;
}

static void rt_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  const void *want;
  size_t len;

  (void)ctx;
  ASSERT_NULL(ev->message.socket);
  ASSERT_NULL(ev->message.server);
  ASSERT(RT.next_rx < RT.total);
  rt_expected(RT.next_rx, &want, &len);
  if (ev->message.len != len)
    FAIL("message %zu: %zu bytes, expected %zu", RT.next_rx, ev->message.len,
         len);
  ASSERT_MEM_EQ(ev->message.data, want, len);
  if (++RT.next_rx == RT.total)
    ASSERT_EQ(0, cnet_socket_end(ch, NULL, 0, NULL, NULL));
}

TEST_CASE(ch01_messages_round_trip_both_ways) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int fd;
  pid_t pid = spawn_helper(&fd, "echo", NULL);

  RT.big = malloc(RT_BIG);
  ASSERT_NOT_NULL(RT.big);
  for (size_t i = 0; i < RT_BIG; i++)
    RT.big[i] = (unsigned char)(i * 7 + (i >> 9));
  for (size_t i = 0; i < 256; i++)
    RT.all256[i] = (unsigned char)i;
  RT.total = 4 + RT_SMALL;

  RT.ch = channel_wrap(loop, fd);
  ASSERT_EQ(0, cnet_socket_on(RT.ch, CNET_EV_MESSAGE, rt_message, NULL));
  watch_socket(RT.ch, &RT.seen);
  /* Everything at once, back to back: the order must survive. */
  for (size_t k = 1; k < RT.total; k++) {
    const void *data;
    size_t len;
    int r;

    void *copy;

    rt_expected(k, &data, &len);
    /* Sent from memory freed right after the call: the bytes are copied
     * (ASan would see a later read of them). */
    copy = malloc(len + 1);
    ASSERT_NOT_NULL(copy);
    memcpy(copy, data, len);
    IN_SEND = true;
    r = cnet_socket_send(RT.ch, copy, len, NULL, rt_sent, (void *)(uintptr_t)k);
    IN_SEND = false;
    memset(copy, 0xee, len);
    free(copy);
    ASSERT_EQ(0, r);
  }
  run_bounded(loop, 5000);

  ASSERT_EQ(RT.total, RT.next_rx);
  ASSERT_EQ(RT.total - 1, RT.next_cb);
  ASSERT_EQ(0, RT.seen.errors);
  ASSERT_EQ(1, RT.seen.ends);
  ASSERT_EQ(1, RT.seen.closes);
  ASSERT_EXITED_0(reap(pid, 3000));
  ASSERT(!fd_is_open(fd));
  cnet_socket_free(RT.ch);
  free(RT.big);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ===== a socket handed over =================================================
 */

#define HO_BYTES (64u * 1024u)

static struct {
  uv_loop_t *loop;
  cnet_socket_t *ch, *sock;
  cnet_server_t *srv;
  pid_t helper, client;
  int port, n0, tcp_fd, tries;
  bool keep_open;
  bool sent, done, client_done, finished;
  int counted;
  seen_t ch_seen, sock_seen;
  char done_text[32];
} HO;

static void ho_after_done(void);

static void ho_maybe_finish(void) {
  if (!HO.finished && HO.done && HO.client_done && HO.sent &&
      HO.counted == (HO.keep_open ? 0 : 1)) {
    HO.finished = true;
    ASSERT_EQ(0, cnet_socket_end(HO.ch, NULL, 0, NULL, NULL));
    cnet_server_close(HO.srv, NULL, NULL);
  }
}

static void ho_client_exit(int status, void *arg) {
  (void)arg;
  ASSERT_EXITED_0(status); /* it read exactly the reply it expected */
  HO.client_done = true;
  ho_maybe_finish();
}

static void ho_counted(cnet_server_t *srv, const cnet_error_t *err,
                       size_t count, void *ctx) {
  (void)ctx;
  ASSERT(srv == HO.srv);
  ASSERT_NULL(err);
  ASSERT_EQ(0, count);
  HO.counted++;
  ho_maybe_finish();
}

static void ho_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ctx;
  ASSERT(!IN_SEND);
  ASSERT(ch == HO.ch);
  if (err != NULL)
    FAIL("send_socket: %s", err->message);
  HO.sent = true;
  if (HO.keep_open) {
    /* Ours still, open and usable. */
    ASSERT_EQ(HO.n0 + 1, fd_count());
    ASSERT(!cnet_socket_destroyed(HO.sock));
    ASSERT_STR_EQ(cnet_socket_ready_state(HO.sock), "open");
    ASSERT(fd_is_open(HO.tcp_fd));
    ASSERT(cnet_socket_is_paused(HO.sock)); /* "sent paused" */
  } else {
    /* The sender's copy is closed once the hand-off is confirmed, and the
     * server counts the connection no more. */
    ASSERT_EQ(HO.n0, fd_count());
    ASSERT(cnet_socket_destroyed(HO.sock));
    ASSERT_EQ(0, cnet_server_connections(HO.srv));
    ASSERT_EQ(0, cnet_server_get_connections(HO.srv, ho_counted, NULL));
  }
  /* keep_open: whether the server still counts the copy kept is not
   * settled by the header; not asserted. */
  if (HO.done)
    ho_after_done();
}

static void ho_send(void) {
  cnet_send_options_t keep = {.keep_open = true};
  int r;

  /* Every byte the client sent is in the kernel, unread by this process. */
  ASSERT_EQ(HO_BYTES, unread_bytes(HO.tcp_fd));
  ASSERT_EQ(0, cnet_socket_bytes_read(HO.sock));
  ASSERT_EQ(1, cnet_server_connections(HO.srv));
  IN_SEND = true;
  r = cnet_socket_send_socket(HO.ch, "take", 4, HO.sock,
                              HO.keep_open ? &keep : NULL, ho_sent, NULL);
  IN_SEND = false;
  ASSERT_EQ(0, r);
}

static void ho_wait_unread(void *arg) {
  (void)arg;
  if (unread_bytes(HO.tcp_fd) == HO_BYTES) {
    ho_send();
    return;
  }
  if (++HO.tries > 1000)
    FAIL("the client's %u bytes did not arrive (%zu unread)", HO_BYTES,
         unread_bytes(HO.tcp_fd));
  later(HO.loop, 2, ho_wait_unread, NULL, true);
}

static void ho_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_address_t peer;

  (void)ctx;
  (void)srv;
  ASSERT_NULL(HO.sock);
  HO.sock = ev->connection;
  cnet_socket_retain(HO.sock); /* looked at after the hand-off */
  watch_socket(HO.sock, &HO.sock_seen);
  ASSERT_EQ(HO.n0 + 1, fd_count());
  ASSERT_EQ(0, cnet_socket_remote_address(HO.sock, &peer));
  HO.tcp_fd = find_tcp_fd(HO.port, peer.port);
  ASSERT_GE(HO.tcp_fd, 0);
  ho_wait_unread(NULL);
}

static void ho_no_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  FAIL("the kept copy read %zu bytes the child should have had", ev->data.len);
}

/* The child has read everything, replied and (keep_open) let its copy go;
 * the send callback has run. */
static void ho_after_done(void) {
  if (HO.keep_open) {
    /* Ours writes on... */
    ASSERT(cnet_socket_write(HO.sock, "PARENT\n", 7, NULL, NULL) >= 0);
    ASSERT_EQ(0, cnet_socket_end(HO.sock, NULL, 0, NULL, NULL));
    /* ...and reads again: nothing but the client's FIN is left, so the
     * socket sees 'end' and closes. */
    ASSERT_EQ(0, cnet_socket_on(HO.sock, CNET_EV_DATA, ho_no_data, NULL));
    cnet_socket_resume(HO.sock);
  }
  ho_maybe_finish();
}

static void ho_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ch;
  (void)ctx;
  ASSERT_NULL(ev->message.socket);
  ASSERT_NULL(ev->message.server);
  ASSERT(message_is(ev, HO.done_text));
  HO.done = true;
  /* Whether the send callback has run yet is ch22's question, not this
   * case's: go on once both happened. */
  if (HO.sent)
    ho_after_done();
}

static void socket_handoff(bool keep_open) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.pause_on_connect = true};
  char nbytes[16];
  int fd;

  HO.loop = loop;
  HO.keep_open = keep_open;
  snprintf(nbytes, sizeof(nbytes), "%u", HO_BYTES);
  snprintf(HO.done_text, sizeof(HO.done_text), "done %u", HO_BYTES);
  HO.helper = spawn_helper(&fd, "recv-socket", nbytes,
                           keep_open ? "destroy" : "end", NULL);
  HO.ch = channel_wrap(loop, fd);
  ASSERT_EQ(0, cnet_socket_on(HO.ch, CNET_EV_MESSAGE, ho_message, NULL));
  watch_socket(HO.ch, &HO.ch_seen);
  HO.srv = cnet_create_server(loop, &so, ho_connection, NULL);
  ASSERT_NOT_NULL(HO.srv);
  ASSERT_EQ(0, cnet_server_listen_port(HO.srv, 0, "127.0.0.1", 0, NULL, NULL));
  HO.port = server_port(HO.srv);
  HO.n0 = fd_count();
  HO.client = fork_client(HO.port, HO_BYTES,
                          keep_open ? "OK 65536\nPARENT\n" : "OK 65536\n");
  watch_exit(loop, HO.client, ho_client_exit, NULL);
  run_bounded(loop, 5000);

  ASSERT(HO.sent && HO.done && HO.client_done);
  ASSERT_EQ(0, HO.ch_seen.errors);
  ASSERT_EQ(1, HO.ch_seen.closes);
  /* The sender's copy went quietly: no 'error', close(false). */
  ASSERT_EQ(0, HO.sock_seen.errors);
  ASSERT_EQ(1, HO.sock_seen.closes);
  ASSERT(!HO.sock_seen.had_error);
  ASSERT_EXITED_0(reap(HO.helper, 3000));
  cnet_socket_release(HO.sock);
  cnet_socket_free(HO.ch);
  cnet_server_free(HO.srv);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* pause_on_connect, hand-off: the client's 64 KiB are all in the kernel and
 * unread when the socket is sent; the child reads every byte from the
 * first one and replies on the socket; the parent's copy is closed after
 * the callback (the fd count is back) and its server counts it no more. */
TEST_CASE(ch02_socket_handed_over_reads_no_byte_in_first_process) {
  socket_handoff(false);
}

/* keep_open: after the callback the parent's copy is still open, counted,
 * and writes after the child's reply. */
TEST_CASE(ch03_keep_open_keeps_senders_copy) {
  socket_handoff(true);
}

/* ===== the channel closes before the hand-off is taken ======================
 */

#define CC_BYTES 1000u

static struct {
  uv_loop_t *loop;
  cnet_socket_t *ch, *sock;
  cnet_server_t *srv;
  pid_t helper, client;
  int port, tcp_fd, tries;
  size_t got;
  bool failed, client_done;
  seen_t ch_seen, sock_seen;
} CC;

static void cc_kill_child(void *arg) {
  (void)arg;
  ASSERT_EQ(0, kill(CC.helper, SIGKILL)); /* it never read the channel */
}

static void cc_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  for (size_t i = 0; i < ev->data.len; i++, CC.got++)
    ASSERT_EQ(pattern_byte(CC.got), (unsigned char)ev->data.base[i]);
  ASSERT(CC.got <= CC_BYTES);
  if (CC.got == CC_BYTES) {
    ASSERT(cnet_socket_write(s, "PARENT-OK\n", 10, NULL, NULL) >= 0);
    ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  }
}

static void cc_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ctx;
  ASSERT(!IN_SEND);
  ASSERT(ch == CC.ch);
  ASSERT_NOT_NULL(err);
  ASSERT_EQ(CNET_ERR_IPC_CHANNEL_CLOSED, err->errnum);
  ASSERT_STR_EQ(err->code, "ERR_IPC_CHANNEL_CLOSED");
  ASSERT_STR_EQ(err->message, "Channel closed");
  CC.failed = true;
  /* Still ours: not destroyed, still counted, its descriptor open. */
  ASSERT(!cnet_socket_destroyed(CC.sock));
  ASSERT_EQ(1, cnet_server_connections(CC.srv));
  ASSERT(fd_is_open(CC.tcp_fd));
  ASSERT_EQ(CC_BYTES, unread_bytes(CC.tcp_fd)); /* nothing read, nothing lost */
  ASSERT_EQ(0, CC.sock_seen.closes);
  /* And it works: every byte the client sent is still there to read. */
  ASSERT_EQ(0, cnet_socket_on(CC.sock, CNET_EV_DATA, cc_data, NULL));
  cnet_socket_resume(CC.sock);
}

static void cc_send(void *arg);

static void cc_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_address_t peer;

  (void)ctx;
  CC.sock = ev->connection;
  cnet_socket_retain(CC.sock);
  watch_socket(CC.sock, &CC.sock_seen);
  ASSERT_EQ(0, cnet_socket_remote_address(CC.sock, &peer));
  CC.tcp_fd = find_tcp_fd(CC.port, peer.port);
  ASSERT_GE(CC.tcp_fd, 0);
  cnet_server_close(srv, NULL, NULL); /* one connection */
  cc_send(NULL);
}

/* Once the client's bytes are all in the kernel (polled), send. */
static void cc_send(void *arg) {
  int r;

  (void)arg;
  if (unread_bytes(CC.tcp_fd) < CC_BYTES) {
    if (++CC.tries > 1000)
      FAIL("the client's bytes did not arrive");
    later(CC.loop, 2, cc_send, NULL, true);
    return;
  }
  ASSERT_EQ(CC_BYTES, unread_bytes(CC.tcp_fd));
  IN_SEND = true;
  r = cnet_socket_send_socket(CC.ch, "take", 4, CC.sock, NULL, cc_sent, NULL);
  IN_SEND = false;
  ASSERT_EQ(0, r);
  later(CC.loop, 100, cc_kill_child, NULL, true);
}

static void cc_client_exit(int status, void *arg) {
  (void)arg;
  ASSERT_EXITED_0(status);
  CC.client_done = true;
}

TEST_CASE(ch04_channel_closed_before_handoff_taken_sender_keeps_socket) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.pause_on_connect = true};
  int fd, st;

  CC.loop = loop;
  CC.helper = spawn_helper(&fd, "hold", NULL);
  CC.ch = channel_wrap(loop, fd);
  watch_socket(CC.ch, &CC.ch_seen);
  CC.srv = cnet_create_server(loop, &so, cc_connection, NULL);
  ASSERT_NOT_NULL(CC.srv);
  ASSERT_EQ(0, cnet_server_listen_port(CC.srv, 0, "127.0.0.1", 0, NULL, NULL));
  CC.port = server_port(CC.srv);
  CC.client = fork_client(CC.port, CC_BYTES, "PARENT-OK\n");
  watch_exit(loop, CC.client, cc_client_exit, NULL);
  run_bounded(loop, 5000);

  ASSERT(CC.failed);
  ASSERT(CC.client_done);
  ASSERT_EQ(CC_BYTES, CC.got);
  ASSERT_EQ(1, CC.ch_seen.closes); /* the channel closed (error or not) */
  ASSERT_EQ(0, CC.sock_seen.errors);
  ASSERT_EQ(1, CC.sock_seen.closes);
  st = reap(CC.helper, 3000);
  ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  cnet_socket_release(CC.sock);
  cnet_socket_free(CC.ch);
  cnet_server_free(CC.srv);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ===== a server handed over =================================================
 */

/* The kernel wakes every process waiting on the shared socket and the first
 * to accept() wins, so the spread is uneven (runs of 80 connections to one
 * child were seen). Connections come in bursts of SV_BATCH until both
 * children have accepted, at most SV_MAX_CONNS in all; each child's first
 * SV_KEEP stay open for the rest of the case, later ones are ended at once
 * (retired) so that the descriptors in use stay few. */
#define SV_MAX_CONNS 1024
#define SV_BATCH 8
#define SV_KEEP 4

typedef struct {
  cnet_socket_t *s;
  char rx[64];
  size_t rx_len;
  char owner;    /* 'A' or 'B': the child that accepted, from its first line */
  char ping[16]; /* what it sent after the kill, to come back */
  bool closed, echoed, retired;
} sv_conn_t;

static struct {
  uv_loop_t *loop;
  cnet_server_t *srv;
  cnet_socket_t *ch[2];
  pid_t pid[2];
  int port, n0, sent, srv_closes;
  int nconn, lined, accepted[2], open[2], counted, retired_open;
  bool counting; /* phase 2 started or waiting for retired ones to close */
  bool two;      /* two children (ch06) or one (ch05) */
  bool killed, finished;
  sv_conn_t conn[SV_MAX_CONNS];
  seen_t ch_seen[2];
} SV;

static void sv_connect_batch(void);
static void sv_after_kill(void);
static void sv_ask_counts(void);

static int sv_index(char owner) {
  return owner == 'A' ? 0 : 1;
}

static void sv_check_done(void) {
  /* Phase 3 done: every connection of B echoed, every one of A closed. */
  if (SV.finished)
    return;
  for (int i = 0; i < SV.nconn; i++) {
    sv_conn_t *c = &SV.conn[i];
    if (c->retired)
      continue;
    if (c->owner == 'B' && !c->echoed)
      return;
    if (c->owner == 'A' && !c->closed)
      return;
  }
  SV.finished = true;
  for (int i = 0; i < SV.nconn; i++)
    if (SV.conn[i].owner == 'B' && !SV.conn[i].closed)
      ASSERT_EQ(0, cnet_socket_end(SV.conn[i].s, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(SV.ch[1], NULL, 0, NULL, NULL));
}

static void sv_conn_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  sv_conn_t *c = ctx;

  ASSERT(c->s == s);
  if (ev->type == CNET_EV_ERROR) {
    /* Only a connection of the child that was killed may fail. */
    if (!(SV.killed && c->owner == 'A'))
      FAIL("connection %d (%c): %s", (int)(c - SV.conn), c->owner,
           ev->error->message);
    return;
  }
  if (ev->type == CNET_EV_CLOSE) {
    c->closed = true;
    if (c->retired) {
      if (--SV.retired_open == 0 && SV.counting)
        sv_ask_counts();
      return;
    }
    if (!(SV.killed && c->owner == 'A') && !c->echoed)
      FAIL("connection %d (%c) closed early", (int)(c - SV.conn), c->owner);
    if (!SV.two)
      ASSERT_EQ(0, cnet_socket_end(SV.ch[0], NULL, 0, NULL, NULL));
    if (SV.killed)
      sv_check_done();
    return;
  }
  if (ev->type == CNET_EV_END)
    return;
  ASSERT(ev->type == CNET_EV_DATA);
  ASSERT(c->rx_len + ev->data.len <= sizeof(c->rx));
  memcpy(c->rx + c->rx_len, ev->data.base, ev->data.len);
  c->rx_len += ev->data.len;
  if (c->owner == 0 && c->rx_len >= 2) {
    ASSERT(c->rx[1] == '\n');
    ASSERT(c->rx[0] == 'A' || (SV.two && c->rx[0] == 'B'));
    c->owner = c->rx[0];
    if (++SV.accepted[sv_index(c->owner)] > SV_KEEP) {
      c->retired = true;
      SV.retired_open++;
      ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
    } else {
      SV.open[sv_index(c->owner)]++;
    }
    if (++SV.lined == SV.nconn)
      sv_connect_batch();
  }
  if (SV.killed && c->owner == 'B' && !c->retired && c->rx_len == 2 + 8) {
    ASSERT_MEM_EQ(c->rx + 2, c->ping, 8);
    c->echoed = true;
    sv_check_done();
  }
  if (!SV.two && c->rx_len == 2 + 4) {
    ASSERT_MEM_EQ(c->rx, "A\nping", 6);
    c->echoed = true;
    ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  }
}

static void sv_connect_one(void) {
  cnet_connect_options_t o = {.host = "127.0.0.1", .port = SV.port};
  static const cnet_event_type_t types[] = {CNET_EV_DATA, CNET_EV_END,
                                            CNET_EV_ERROR, CNET_EV_CLOSE};
  sv_conn_t *c;

  ASSERT(SV.nconn < SV_MAX_CONNS);
  c = &SV.conn[SV.nconn++];
  c->s = cnet_create_connection(SV.loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(c->s);
  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(c->s, types[i], sv_conn_event, c));
  if (!SV.two)
    ASSERT(cnet_socket_write(c->s, "ping", 4, NULL, NULL) >= 0);
}

static void sv_count_reply(cnet_socket_t *ch, const cnet_event_t *ev,
                           void *ctx) {
  int i = (int)(uintptr_t)ctx;
  char want[32];

  ASSERT(ch == SV.ch[i]);
  ASSERT_NULL(ev->message.socket);
  ASSERT_NULL(ev->message.server);
  /* A server shared with other processes counts what it accepted itself
   * (and still has open). */
  snprintf(want, sizeof(want), "count %d", SV.open[i]);
  if (!message_is(ev, want))
    FAIL("child %c answered \"%.*s\", expected \"%s\"", 'A' + i,
         (int)ev->message.len, (const char *)ev->message.data, want);
  if (++SV.counted == 2) {
    /* Phase 3: stop one child; the other's connections live on. */
    ASSERT_EQ(0, kill(SV.pid[0], SIGKILL));
    sv_after_kill();
  }
}

static void sv_after_kill(void) {
  int st = reap(SV.pid[0], 2000);

  ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  SV.killed = true;
  for (int i = 0; i < SV.nconn; i++) {
    sv_conn_t *c = &SV.conn[i];
    if (c->owner != 'B' || c->retired)
      continue;
    snprintf(c->ping, sizeof(c->ping), "ping-%03d", i);
    ASSERT(cnet_socket_write(c->s, c->ping, 8, NULL, NULL) >= 0);
  }
  sv_check_done();
}

/* Phase 2 (once the retired connections are gone on both sides: a child
 * closes its end before this one sees the close): ask each child what its
 * server counts. */
static void sv_ask_counts(void) {
  for (int i = 0; i < 2; i++)
    ASSERT_EQ(0, send_text(SV.ch[i], "count?", NULL, NULL));
}

static void sv_connect_batch(void) {
  if (!SV.two) {
    if (SV.nconn == 0)
      sv_connect_one();
    return;
  }
  if ((SV.accepted[0] > 0 && SV.accepted[1] > 0 && SV.nconn >= SV_BATCH) ||
      SV.nconn + SV_BATCH > SV_MAX_CONNS) {
    /* Every child accepted (or we gave up: the assertion below says so). */
    if (SV.accepted[0] == 0 || SV.accepted[1] == 0)
      FAIL("after %d connections child A accepted %d, child B %d", SV.nconn,
           SV.accepted[0], SV.accepted[1]);
    printf("# %d connections: child A accepted %d, child B %d\n", SV.nconn,
           SV.accepted[0], SV.accepted[1]);
    SV.counting = true;
    if (SV.retired_open == 0)
      sv_ask_counts();
    return;
  }
  for (int i = 0; i < SV_BATCH; i++) /* a burst: the kernel spreads them */
    sv_connect_one();
}

static void sv_server_closed(cnet_server_t *srv, const cnet_event_t *ev,
                             void *ctx) {
  (void)srv;
  (void)ev;
  (void)ctx;
  SV.srv_closes++;
}

static void sv_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ctx;
  ASSERT(!IN_SEND);
  if (err != NULL)
    FAIL("send_server: %s", err->message);
  ASSERT(ch == SV.ch[0] || ch == SV.ch[1]);
  if (!SV.two) {
    /* Not kept: the sender's copy is closed once the child has it. */
    ASSERT(!cnet_server_listening(SV.srv));
    ASSERT_EQ(SV.n0, fd_count());
    sv_connect_batch();
    return;
  }
  if (++SV.sent == 2) {
    /* Both children hold the listening socket; this process lets go. */
    ASSERT(cnet_server_listening(SV.srv));
    cnet_server_close(SV.srv, NULL, NULL);
    sv_connect_batch();
  }
}

static void server_handoff(bool two) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_send_options_t keep = {.keep_open = true};
  int fd[2];

  SV.loop = loop;
  SV.two = two;
  for (int i = 0; i < (two ? 2 : 1); i++) {
    SV.pid[i] = spawn_helper(&fd[i], "recv-server", i == 0 ? "A" : "B", NULL);
    SV.ch[i] = channel_wrap(loop, fd[i]);
    watch_socket(SV.ch[i], &SV.ch_seen[i]);
    ASSERT_EQ(0, cnet_socket_on(SV.ch[i], CNET_EV_MESSAGE, sv_count_reply,
                                (void *)(uintptr_t)i));
  }
  SV.n0 = fd_count();
  SV.srv = cnet_create_server(loop, NULL, NULL, NULL);
  ASSERT_NOT_NULL(SV.srv);
  ASSERT_EQ(0, cnet_server_on(SV.srv, CNET_EV_CLOSE, sv_server_closed, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(SV.srv, 0, "127.0.0.1", 0, NULL, NULL));
  SV.port = server_port(SV.srv);
  ASSERT_EQ(SV.n0 + 1, fd_count());
  for (int i = 0; i < (two ? 2 : 1); i++) {
    int r;
    IN_SEND = true;
    r = cnet_socket_send_server(SV.ch[i], "serve", 5, SV.srv,
                                two ? &keep : NULL, sv_sent, NULL);
    IN_SEND = false;
    ASSERT_EQ(0, r);
  }
  run_bounded(loop, 5000);

  ASSERT_EQ(1, SV.srv_closes);
  if (two) {
    ASSERT(SV.killed);
    ASSERT_GT(SV.accepted[0], 0);
    ASSERT_GT(SV.accepted[1], 0);
    ASSERT_EXITED_0(reap(SV.pid[1], 3000));
    ASSERT_EQ(1, SV.ch_seen[0].closes);
    ASSERT_EQ(0, SV.ch_seen[1].errors);
    ASSERT_EQ(1, SV.ch_seen[1].closes);
  } else {
    ASSERT_EQ(1, SV.nconn);
    ASSERT(SV.conn[0].echoed && SV.conn[0].closed);
  }
  for (int i = 0; i < (two ? 2 : 1); i++)
    cnet_socket_free(SV.ch[i]);
  cnet_server_free(SV.srv);
  loop_finish(loop);
  if (!two)
    ASSERT_EXITED_0(reap(SV.pid[0], 3000));
  ASSERT_EQ(before, fd_count());
}

/* Not kept: once the child confirms, the parent's server is closed ('close'
 * emitted, its descriptor gone) and a client is served by the child on the
 * same port. */
TEST_CASE(ch05_server_handed_over_closes_senders_copy) {
  server_handoff(false);
}

/* Shared with two children (keep_open, then the parent closes its own):
 * each child accepts some of the connections (bursts of SV_BATCH, at most
 * SV_MAX_CONNS in all, until both have); each child's server counts only
 * the connections it accepted and still has open; killing child A loses
 * nothing open on child B -- every B connection still echoes. */
TEST_CASE(ch06_server_shared_by_two_children) {
  server_handoff(true);
}

/* ===== malformed frames ======================================================
 */

static seen_t MF;

static void mf_message(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_EQ(2, ev->message.len);
  ASSERT_MEM_EQ(ev->message.data, "hi", 2);
  seen_event(&MF, ev);
}

/* Raw bytes into one end, the other a channel: 'error' EPROTO (a read
 * error, as the header says), then 'close'. */
static void malformed(const void *bytes, size_t n, const char *want_trace) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_socket_t *ch;
  int sv[2];

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ch = channel_wrap(loop, sv[0]);
  watch_socket(ch, &MF);
  ASSERT_EQ(0, cnet_socket_on(ch, CNET_EV_MESSAGE, mf_message, NULL));
  ASSERT_EQ((ssize_t)n, write(sv[1], bytes, n));
  run_bounded(loop, 3000);

  ASSERT_STR_EQ(MF.trace.buf, want_trace);
  ASSERT_EQ(UV_EPROTO, MF.error.errnum);
  ASSERT_STR_EQ(MF.error.code, "EPROTO");
  ASSERT_STR_EQ(MF.error.syscall, "read");
  ASSERT_STR_EQ(MF.error.message, "read EPROTO");
  ASSERT(MF.had_error);
  ASSERT(!fd_is_open(sv[0]));
  close(sv[1]);
  cnet_socket_free(ch);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(ch07_malformed_frame_bad_magic_is_eproto) {
  static const unsigned char bad[] = {'X', 'N', 0, 0, 0, 0, 0, 0};
  malformed(bad, sizeof(bad), "error:EPROTO close(true)");
}

/* A good frame first: the message comes, then the bad one fails. */
TEST_CASE(ch08_malformed_frame_after_good_one) {
  static const unsigned char bytes[] = {'c', 'N', 0,   0, 0, 0, 0, 2, 'h',
                                        'i', 'c', 'n', 0, 0, 0, 0, 0, 0};
  malformed(bytes, sizeof(bytes), "message error:EPROTO close(true)");
}

TEST_CASE(ch09_malformed_frame_unknown_kind_is_eproto) {
  static const unsigned char bad[] = {'c', 'N', 9, 0, 0, 0, 0, 0};
  malformed(bad, sizeof(bad), "error:EPROTO close(true)");
}

TEST_CASE(ch10_malformed_frame_length_over_max_is_eproto) {
  unsigned char bad[8] = {'c', 'N', 0, 0};
  uint32_t len = CNET_CHANNEL_MAX + 1u;

  bad[4] = (unsigned char)(len >> 24);
  bad[5] = (unsigned char)(len >> 16);
  bad[6] = (unsigned char)(len >> 8);
  bad[7] = (unsigned char)len;
  malformed(bad, sizeof(bad), "error:EPROTO close(true)");
}

/* ===== the wire protocol, from a raw peer ====================================
 */

static struct {
  cnet_socket_t *ch;
  int peer;
  seen_t seen;
  int sent_cbs;
  bool got_socket;
} WP;

static void wp_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ch;
  (void)ctx;
  ASSERT(!IN_SEND);
  ASSERT_NULL(err);
  WP.sent_cbs++;
}

static void wp_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ch;
  (void)ctx;
  seen_event(&WP.seen, ev);
  if (WP.seen.messages == 1) {
    ASSERT(message_is(ev, "raw"));
    ASSERT_NULL(ev->message.socket);
    ASSERT_NULL(ev->message.server);
  } else {
    /* kind 1: the message and a ready-to-use socket (cnet-owned) */
    ASSERT(message_is(ev, "sock"));
    ASSERT_NOT_NULL(ev->message.socket);
    ASSERT_NULL(ev->message.server);
    WP.got_socket = true;
    ASSERT(cnet_socket_write(ev->message.socket, "via fd", 6, NULL, NULL) >= 0);
    ASSERT_EQ(0, cnet_socket_end(ev->message.socket, NULL, 0, NULL, NULL));
    ASSERT_EQ(0, cnet_socket_end(WP.ch, NULL, 0, NULL, NULL));
  }
}

static void wp_send_fd(void *arg) {
  static const unsigned char hdr[] = {'c', 'N', 1,   0,   0,   0,
                                      0,   4,   's', 'o', 'c', 'k'};
  int *pair = arg; /* the descriptor to send: pair[0]; pair[1] stays */
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = (void *)hdr, .iov_len = 1};
  struct msghdr msg = {0};
  struct cmsghdr *cm;

  /* The descriptor travels with the frame's first byte, as documented. */
  memset(cbuf, 0, sizeof(cbuf));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &pair[0], sizeof(int));
  ASSERT_EQ(1, sendmsg(WP.peer, &msg, 0));
  ASSERT_EQ((ssize_t)sizeof(hdr) - 1, write(WP.peer, hdr + 1, sizeof(hdr) - 1));
  close(pair[0]); /* ours is sent: the receiver owns its copy */
  /* Nothing more from the raw ends: FIN on both, so that the channel and
   * the socket that came over can close (allow_half_open is off). */
  ASSERT_EQ(0, shutdown(WP.peer, SHUT_WR));
  ASSERT_EQ(0, shutdown(pair[1], SHUT_WR));
}

/* Frames as the header documents them, both ways, checked byte by byte
 * against a peer that is not cnet: a message out, a message in, and a
 * descriptor in (kind 1) answered with an ack (kind 3, length 0). */
TEST_CASE(ch11_wire_protocol_as_documented) {
  static const unsigned char out[] = {'c', 'N', 0,   0,   0,   0,  0,
                                      5,   'h', 'e', 'l', 'l', 'o'};
  static const unsigned char in[] = {'c', 'N', 0, 0, 0, 0, 0, 3, 'r', 'a', 'w'};
  static const unsigned char ack[] = {'c', 'N', 3, 0, 0, 0, 0, 0};
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  unsigned char buf[64];
  int sv[2], pair[2];
  size_t got = 0;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
  WP.peer = sv[1];
  WP.ch = channel_wrap(loop, sv[0]);
  watch_socket(WP.ch, &WP.seen);
  ASSERT_EQ(0, cnet_socket_on(WP.ch, CNET_EV_MESSAGE, wp_message, NULL));
  IN_SEND = true;
  ASSERT_EQ(0, cnet_socket_send(WP.ch, "hello", 5, NULL, wp_sent, NULL));
  IN_SEND = false;
  ASSERT_EQ((ssize_t)sizeof(in), write(sv[1], in, sizeof(in)));
  later(loop, 20, wp_send_fd, pair, true);
  run_bounded(loop, 3000);

  ASSERT_EQ(1, WP.sent_cbs);
  ASSERT(WP.got_socket);
  ASSERT_EQ(2, WP.seen.messages);
  ASSERT_EQ(0, WP.seen.errors);
  /* What the raw peer read: the message frame, then the ack, then EOF. */
  for (;;) {
    ssize_t r = read(sv[1], buf + got, sizeof(buf) - got);
    ASSERT_GE(r, 0);
    if (r == 0)
      break;
    got += (size_t)r;
  }
  ASSERT_EQ(sizeof(out) + sizeof(ack), got);
  ASSERT_MEM_EQ(buf, out, sizeof(out));
  ASSERT_MEM_EQ(buf + sizeof(out), ack, sizeof(ack));
  /* The socket that came over: it wrote and closed its end. */
  got = 0;
  for (;;) {
    ssize_t r = read(pair[1], buf + got, sizeof(buf) - got);
    ASSERT_GE(r, 0);
    if (r == 0)
      break;
    got += (size_t)r;
  }
  ASSERT_EQ(6, got);
  ASSERT_MEM_EQ(buf, "via fd", 6);
  close(pair[1]);
  close(sv[1]);
  cnet_socket_free(WP.ch);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ===== errors at once
 * ========================================================= */

static int CB_CALLS;

static void never_cb(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ch;
  (void)err;
  (void)ctx;
  CB_CALLS++;
}

static void never_write_cb(cnet_socket_t *s, const cnet_error_t *err,
                           void *ctx) {
  (void)s;
  (void)err;
  (void)ctx;
  CB_CALLS++;
}

static void never_release(void *data, size_t len, void *ctx) {
  (void)data;
  (void)len;
  (void)ctx;
  CB_CALLS++;
}

static void stop_loop(void *arg) {
  uv_stop(arg);
}

/* A listening server and one connected (wrapped) socket to send. */
static cnet_server_t *listening_server(uv_loop_t *loop) {
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);

  ASSERT_NOT_NULL(srv);
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  return srv;
}

static cnet_socket_t *connected_socket(uv_loop_t *loop, int *peer) {
  cnet_socket_options_t o = {.wrap_fd = true};
  int sv[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  o.fd = sv[0];
  s = cnet_socket_new(loop, &o);
  ASSERT_NOT_NULL(s);
  *peer = sv[1];
  return s;
}

#define ASSERT_FAILS(code, call)                                               \
  do {                                                                         \
    int r_ = (call);                                                           \
    if (r_ != (code))                                                          \
      FAIL("%s returned %d (%s), expected %s", #call, r_, cnet_err_name(r_),   \
           #code);                                                             \
  } while (0)

TEST_CASE(ch12_send_on_non_channel_is_einval) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = listening_server(loop);
  int peer, peer2;
  cnet_socket_t *plain = connected_socket(loop, &peer);
  cnet_socket_t *other = connected_socket(loop, &peer2);

  ASSERT_FAILS(UV_EINVAL,
               cnet_socket_send(plain, "x", 1, NULL, never_cb, NULL));
  ASSERT_FAILS(UV_EINVAL, cnet_socket_send(NULL, "x", 1, NULL, never_cb, NULL));
  ASSERT_FAILS(UV_EINVAL, cnet_socket_send_socket(plain, "x", 1, other, NULL,
                                                  never_cb, NULL));
  ASSERT_FAILS(UV_EINVAL, cnet_socket_send_server(plain, "x", 1, srv, NULL,
                                                  never_cb, NULL));
  later(loop, 50, stop_loop, loop, false);
  run_bounded(loop, 1000);
  ASSERT_EQ(0, unread_bytes(peer)); /* nothing was written */
  ASSERT(!cnet_socket_destroyed(other));
  ASSERT(cnet_server_listening(srv));
  cnet_socket_free(plain);
  cnet_socket_free(other);
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(0, CB_CALLS);
  close(peer);
  close(peer2);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(ch13_send_over_channel_max_is_emsgsize) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2], peer;
  cnet_socket_t *ch, *sock;
  char *big = calloc(1, (size_t)CNET_CHANNEL_MAX + 1);

  ASSERT_NOT_NULL(big);
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ch = channel_wrap(loop, sv[0]);
  sock = connected_socket(loop, &peer);
  ASSERT_FAILS(UV_EMSGSIZE, cnet_socket_send(ch, big, CNET_CHANNEL_MAX + 1u,
                                             NULL, never_cb, NULL));
  ASSERT_FAILS(UV_EMSGSIZE,
               cnet_socket_send_socket(ch, big, CNET_CHANNEL_MAX + 1u, sock,
                                       NULL, never_cb, NULL));
  free(big);
  later(loop, 50, stop_loop, loop, false);
  run_bounded(loop, 1000);
  ASSERT_EQ(0, unread_bytes(sv[1]));    /* nothing reached the wire */
  ASSERT(!cnet_socket_destroyed(sock)); /* and the socket is untouched */
  ASSERT(!cnet_socket_destroyed(ch));
  cnet_socket_free(sock);
  cnet_socket_free(ch);
  loop_finish(loop);
  ASSERT_EQ(0, CB_CALLS);
  close(sv[1]);
  close(peer);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(ch14_send_socket_without_connection_is_invalid_handle_type) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2], sv2[2], peer;
  cnet_socket_t *ch, *ch2, *fresh, *gone;
  const cnet_error_t *e;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv2));
  ch = channel_wrap(loop, sv[0]);
  ch2 = channel_wrap(loop, sv2[0]);
  fresh = cnet_socket_new(loop, NULL); /* never connected */
  ASSERT_NOT_NULL(fresh);
  gone = connected_socket(loop, &peer);
  cnet_socket_destroy(gone, NULL); /* had a connection, has none now */

  ASSERT_FAILS(
      CNET_ERR_INVALID_HANDLE_TYPE,
      cnet_socket_send_socket(ch, "x", 1, fresh, NULL, never_cb, NULL));
  e = cnet_last_error();
  ASSERT_STR_EQ(e->code, "ERR_INVALID_HANDLE_TYPE");
  ASSERT_STR_EQ(e->message, "This handle type cannot be sent");
  ASSERT_FAILS(CNET_ERR_INVALID_HANDLE_TYPE,
               cnet_socket_send_socket(ch, "x", 1, gone, NULL, never_cb, NULL));
  /* A channel is not sent over a channel: not itself, not another. */
  ASSERT_FAILS(CNET_ERR_INVALID_HANDLE_TYPE,
               cnet_socket_send_socket(ch, "x", 1, ch, NULL, never_cb, NULL));
  ASSERT_FAILS(CNET_ERR_INVALID_HANDLE_TYPE,
               cnet_socket_send_socket(ch, "x", 1, ch2, NULL, never_cb, NULL));
  later(loop, 50, stop_loop, loop, false);
  run_bounded(loop, 1000);
  ASSERT_EQ(0, unread_bytes(sv[1]));
  ASSERT(!cnet_socket_destroyed(ch2));
  cnet_socket_free(fresh);
  cnet_socket_free(gone);
  cnet_socket_free(ch);
  cnet_socket_free(ch2);
  loop_finish(loop);
  ASSERT_EQ(0, CB_CALLS);
  close(sv[1]);
  close(sv2[1]);
  close(peer);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(ch15_send_server_not_listening_is_server_not_running) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2];
  cnet_socket_t *ch;
  cnet_server_t *idle = cnet_create_server(loop, NULL, NULL, NULL);
  cnet_server_t *closed = listening_server(loop);
  const cnet_error_t *e;

  ASSERT_NOT_NULL(idle);
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ch = channel_wrap(loop, sv[0]);
  ASSERT_FAILS(CNET_ERR_SERVER_NOT_RUNNING,
               cnet_socket_send_server(ch, "x", 1, idle, NULL, never_cb, NULL));
  e = cnet_last_error();
  ASSERT_STR_EQ(e->code, "ERR_SERVER_NOT_RUNNING");
  ASSERT_STR_EQ(e->message, "Server is not running.");
  ASSERT_EQ(0, cnet_server_close(closed, NULL, NULL));
  ASSERT_FAILS(
      CNET_ERR_SERVER_NOT_RUNNING,
      cnet_socket_send_server(ch, "x", 1, closed, NULL, never_cb, NULL));
  later(loop, 50, stop_loop, loop, false);
  run_bounded(loop, 1000);
  ASSERT_EQ(0, unread_bytes(sv[1]));
  cnet_socket_free(ch);
  cnet_server_free(idle);
  cnet_server_free(closed);
  loop_finish(loop);
  ASSERT_EQ(0, CB_CALLS);
  close(sv[1]);
  ASSERT_EQ(before, fd_count());
}

/* A channel emits no 'data' and takes no stream writes: write() and its
 * variants are ERR_INVALID_ARG_VALUE at once, nothing reaches the wire,
 * no callback runs, and messages still go. */
TEST_CASE(ch16_write_on_channel_is_invalid_arg_value) {
  static const unsigned char frame[] = {'c', 'N', 0, 0, 0, 0, 0, 2, 'o', 'k'};
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2];
  cnet_socket_t *ch;
  unsigned char buf[16];
  static char owned[] = "owned";

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ch = channel_wrap(loop, sv[0]);
  ASSERT_FAILS(CNET_ERR_INVALID_ARG_VALUE,
               cnet_socket_write(ch, "x", 1, never_write_cb, NULL));
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_INVALID_ARG_VALUE");
  ASSERT_FAILS(CNET_ERR_INVALID_ARG_VALUE,
               cnet_socket_write_string(ch, "x", NULL, never_write_cb, NULL));
  ASSERT_FAILS(CNET_ERR_INVALID_ARG_VALUE,
               cnet_socket_write_owned(ch, owned, 5, never_release, NULL,
                                       never_write_cb, NULL));
  later(loop, 50, stop_loop, loop, false);
  run_bounded(loop, 1000);
  ASSERT_EQ(0, unread_bytes(sv[1]));
  ASSERT(!cnet_socket_destroyed(ch));
  ASSERT_EQ(0, cnet_socket_send(ch, "ok", 2, NULL, NULL, NULL));
  later(loop, 50, stop_loop, loop, false);
  run_bounded(loop, 1000);
  ASSERT_EQ((ssize_t)sizeof(frame), read(sv[1], buf, sizeof(buf)));
  ASSERT_MEM_EQ(buf, frame, sizeof(frame));
  cnet_socket_free(ch);
  loop_finish(loop);
  ASSERT_EQ(0, CB_CALLS);
  close(sv[1]);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(ch17_send_on_closed_channel_is_ipc_channel_closed) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.channel = true};
  cnet_connect_options_t co = {.path = temp_socket_path(), .channel = true};
  cnet_server_t *srv = cnet_create_server(loop, &so, NULL, NULL);
  int sv[2], sv2[2];
  cnet_socket_t *never, *ended, *destroyed;

  /* A channel still connecting is not connected yet. */
  ASSERT_NOT_NULL(srv);
  ASSERT_EQ(0, cnet_server_listen_path(srv, co.path, 0, NULL, NULL));
  never = cnet_socket_new(loop, NULL);
  ASSERT_NOT_NULL(never);
  ASSERT_EQ(0, cnet_socket_connect(never, &co, NULL, NULL));
  ASSERT_FAILS(CNET_ERR_IPC_CHANNEL_CLOSED,
               cnet_socket_send(never, "x", 1, NULL, never_cb, NULL));
  ASSERT_STR_EQ(cnet_last_error()->message, "Channel closed");
  cnet_socket_destroy(never, NULL);
  cnet_server_close(srv, NULL, NULL);

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ended = channel_wrap(loop, sv[0]);
  ASSERT_EQ(0, cnet_socket_end(ended, NULL, 0, NULL, NULL));
  ASSERT_FAILS(CNET_ERR_IPC_CHANNEL_CLOSED,
               cnet_socket_send(ended, "x", 1, NULL, never_cb, NULL));

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv2));
  destroyed = channel_wrap(loop, sv2[0]);
  cnet_socket_destroy(destroyed, NULL);
  ASSERT_FAILS(CNET_ERR_IPC_CHANNEL_CLOSED,
               cnet_socket_send(destroyed, "x", 1, NULL, never_cb, NULL));
  close(sv[1]); /* the peer goes: 'ended' closes */
  close(sv2[1]);
  run_bounded(loop, 2000);
  cnet_socket_free(never);
  cnet_socket_free(ended);
  cnet_socket_free(destroyed);
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(0, CB_CALLS);
  ASSERT_EQ(before, fd_count());
}

/* ===== the largest message
 * ===================================================== */

static struct {
  cnet_socket_t *a, *b;
  unsigned char *data;
  bool got, sent;
} MX;

static void mx_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ch;
  (void)ctx;
  ASSERT(!MX.got);
  ASSERT_EQ(CNET_CHANNEL_MAX, ev->message.len);
  if (memcmp(ev->message.data, MX.data, CNET_CHANNEL_MAX) != 0)
    ASSERT_MEM_EQ(ev->message.data, MX.data, CNET_CHANNEL_MAX);
  MX.got = true;
  ASSERT_EQ(0, cnet_socket_end(MX.b, NULL, 0, NULL, NULL));
}

static void mx_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ch;
  (void)ctx;
  ASSERT_NULL(err);
  MX.sent = true;
}

/* Exactly CNET_CHANNEL_MAX bytes is allowed ("at most"), and arrives whole,
 * between two channels of this process. */
TEST_CASE(ch18_message_of_channel_max_is_delivered) {
  int before, sv[2];
  uv_loop_t *loop;

  if (getenv("CNET_UNDER_VALGRIND") != NULL) {
    /* 64 MiB copied several times takes valgrind longer than a case may
     * run; ASan and plain builds run it (about 1 s). */
    printf("# skip: the 64 MiB message is too slow under valgrind\n");
    return;
  }
  before = fd_count();
  loop = loop_new();
  MX.data = malloc(CNET_CHANNEL_MAX);
  ASSERT_NOT_NULL(MX.data);
  for (size_t i = 0; i < CNET_CHANNEL_MAX; i++)
    MX.data[i] = pattern_byte(i);
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  MX.a = channel_wrap(loop, sv[0]);
  MX.b = channel_wrap(loop, sv[1]);
  ASSERT_EQ(0, cnet_socket_on(MX.b, CNET_EV_MESSAGE, mx_message, NULL));
  ASSERT_EQ(0, cnet_socket_send(MX.a, MX.data, CNET_CHANNEL_MAX, NULL, mx_sent,
                                NULL));
  run_bounded(loop, 8000);
  ASSERT(MX.sent && MX.got);
  cnet_socket_free(MX.a);
  cnet_socket_free(MX.b);
  free(MX.data);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ===== connect({path, channel}) to a server with the channel option
 * ============ */

static struct {
  uv_loop_t *loop;
  cnet_server_t *ipc_srv, *tcp_srv;
  cnet_socket_t *ch, *acc, *t, *r;
  int tcp_port;
  char t_rx[64], r_rx[64];
  size_t t_len, r_len;
  bool sent, r_closed, t_closed;
  seen_t acc_seen, ch_seen;
} IC;

static void ic_maybe_finish(void) {
  if (IC.sent && IC.r_closed && IC.t_closed) {
    ASSERT_EQ(0, cnet_socket_end(IC.ch, NULL, 0, NULL, NULL));
    cnet_server_close(IC.ipc_srv, NULL, NULL);
    cnet_server_close(IC.tcp_srv, NULL, NULL);
  }
}

static void ic_t_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  if (ev->type == CNET_EV_DATA) {
    ASSERT(IC.t_len + ev->data.len <= sizeof(IC.t_rx));
    memcpy(IC.t_rx + IC.t_len, ev->data.base, ev->data.len);
    IC.t_len += ev->data.len;
    if (IC.t_len == 17) {
      ASSERT_MEM_EQ(IC.t_rx, "via handed socket", 17);
      ASSERT(cnet_socket_write(s, "back", 4, NULL, NULL) >= 0);
    }
  } else if (ev->type == CNET_EV_ERROR) {
    FAIL("tcp server side: %s", ev->error->message);
  } else if (ev->type == CNET_EV_CLOSE) {
    IC.t_closed = true;
    ic_maybe_finish();
  }
}

static void ic_r_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  if (ev->type == CNET_EV_DATA) {
    ASSERT(IC.r_len + ev->data.len <= sizeof(IC.r_rx));
    memcpy(IC.r_rx + IC.r_len, ev->data.base, ev->data.len);
    IC.r_len += ev->data.len;
    if (IC.r_len == 4) {
      ASSERT_MEM_EQ(IC.r_rx, "back", 4);
      ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
    }
  } else if (ev->type == CNET_EV_ERROR) {
    FAIL("received socket: %s", ev->error->message);
  } else if (ev->type == CNET_EV_CLOSE) {
    IC.r_closed = true;
    ic_maybe_finish();
  }
}

static void ic_acc_message(cnet_socket_t *ch, const cnet_event_t *ev,
                           void *ctx) {
  static const cnet_event_type_t types[] = {CNET_EV_DATA, CNET_EV_ERROR,
                                            CNET_EV_CLOSE};
  cnet_address_t a;

  (void)ctx;
  ASSERT(ch == IC.acc);
  ASSERT(message_is(ev, "tcp"));
  ASSERT_NULL(ev->message.server);
  ASSERT_NOT_NULL(ev->message.socket);
  ASSERT_NULL(IC.r);
  IC.r = ev->message.socket;
  /* The child's TCP client end, now here: its peer is our TCP server. */
  ASSERT_EQ(0, cnet_socket_remote_address(IC.r, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  ASSERT_EQ(IC.tcp_port, a.port);
  ASSERT_EQ(4, a.family);
  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(IC.r, types[i], ic_r_event, NULL));
  cnet_socket_resume(IC.r);
  ASSERT(cnet_socket_write(IC.r, "via handed socket", 17, NULL, NULL) >= 0);
}

static void ic_ipc_connection(cnet_server_t *srv, const cnet_event_t *ev,
                              void *ctx) {
  (void)srv;
  (void)ctx;
  ASSERT_NULL(IC.acc);
  IC.acc = ev->connection;
  watch_socket(IC.acc, &IC.acc_seen);
  ASSERT_EQ(0, cnet_socket_on(IC.acc, CNET_EV_MESSAGE, ic_acc_message, NULL));
}

static void ic_tcp_connection(cnet_server_t *srv, const cnet_event_t *ev,
                              void *ctx) {
  static const cnet_event_type_t types[] = {CNET_EV_DATA, CNET_EV_ERROR,
                                            CNET_EV_CLOSE};

  (void)srv;
  (void)ctx;
  ASSERT_NULL(IC.t);
  IC.t = ev->connection;
  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(IC.t, types[i], ic_t_event, NULL));
}

static void ic_ch_message(cnet_socket_t *ch, const cnet_event_t *ev,
                          void *ctx) {
  (void)ch;
  (void)ctx;
  ASSERT(message_is(ev, "sent"));
  IC.sent = true;
  ic_maybe_finish();
}

TEST_CASE(ch19_connect_path_channel_carries_socket) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_server_options_t ipc = {.channel = true};
  const char *path = temp_socket_path();
  char port[16];
  int fd;
  pid_t pid;

  IC.loop = loop;
  IC.ipc_srv = cnet_create_server(loop, &ipc, ic_ipc_connection, NULL);
  ASSERT_NOT_NULL(IC.ipc_srv);
  ASSERT_EQ(0, cnet_server_listen_path(IC.ipc_srv, path, 0, NULL, NULL));
  IC.tcp_srv = listening_server(loop);
  ASSERT_EQ(0, cnet_server_on(IC.tcp_srv, CNET_EV_CONNECTION, ic_tcp_connection,
                              NULL));
  IC.tcp_port = server_port(IC.tcp_srv);
  snprintf(port, sizeof(port), "%d", IC.tcp_port);
  pid = spawn_helper(&fd, "ipc-connect", path, port, NULL);
  IC.ch = channel_wrap(loop, fd);
  watch_socket(IC.ch, &IC.ch_seen);
  ASSERT_EQ(0, cnet_socket_on(IC.ch, CNET_EV_MESSAGE, ic_ch_message, NULL));
  run_bounded(loop, 5000);

  ASSERT(IC.sent && IC.r_closed && IC.t_closed);
  ASSERT_EQ(4, IC.r_len);
  /* The child ended the IPC channel after its send: it closed cleanly. */
  ASSERT_NOT_NULL(IC.acc);
  ASSERT_EQ(0, IC.acc_seen.errors);
  ASSERT_EQ(1, IC.acc_seen.ends);
  ASSERT_EQ(1, IC.acc_seen.closes);
  ASSERT_EQ(0, IC.ch_seen.errors);
  ASSERT_EXITED_0(reap(pid, 3000));
  cnet_socket_free(IC.ch);
  cnet_server_free(IC.ipc_srv);
  cnet_server_free(IC.tcp_srv);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ===== no 'message' listener
 * ==================================================== */

static struct {
  cnet_socket_t *a, *b;
  cnet_server_t *srv;
  bool sent;
} NL;

static void nl_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ch;
  (void)ctx;
  if (err != NULL)
    FAIL("send_socket: %s", err->message);
  NL.sent = true;
  ASSERT_EQ(0, cnet_socket_end(NL.a, NULL, 0, NULL, NULL));
}

static void nl_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_send_socket(NL.a, "x", 1, ev->connection, NULL,
                                       nl_sent, NULL));
  cnet_server_close(srv, NULL, NULL);
}

/* "With no 'message' listener both are closed": the socket that came is
 * closed by the receiver, the sender's copy after the confirmation -- the
 * client sees EOF, and nothing is left open. */
TEST_CASE(ch20_no_message_listener_closes_what_came) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  struct sockaddr_in sa;
  int sv[2], client;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  NL.a = channel_wrap(loop, sv[0]);
  NL.b = channel_wrap(loop, sv[1]);
  NL.srv = cnet_create_server(
      loop, &(cnet_server_options_t){.pause_on_connect = true}, nl_connection,
      NULL);
  ASSERT_NOT_NULL(NL.srv);
  ASSERT_EQ(0, cnet_server_listen_port(NL.srv, 0, "127.0.0.1", 0, NULL, NULL));
  client = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)server_port(NL.srv));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, connect(client, (struct sockaddr *)&sa, sizeof(sa)));
  run_bounded(loop, 3000);

  ASSERT(NL.sent);
  {
    struct pollfd p = {.fd = client, .events = POLLIN};
    char c;
    ASSERT_EQ(1, poll(&p, 1, 1000));
    ASSERT_EQ(0, read(client, &c, 1)); /* EOF: no copy left anywhere */
  }
  close(client);
  cnet_socket_free(NL.a);
  cnet_socket_free(NL.b);
  cnet_server_free(NL.srv);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ===== IPC sockets, in order, one owner each
 * ==================================== */

static struct {
  cnet_socket_t *a, *b, *sent[2], *got[2];
  int peer[2];
  int n, cbs, msgs;
  trace_t trace;
} IP;

static void ip_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  int k = (int)(uintptr_t)ctx;
  char w[16];

  (void)ch;
  ASSERT(!IN_SEND);
  if (err != NULL)
    FAIL("send %d: %s", k, err->message);
  snprintf(w, sizeof(w), "cb%d", k);
  trace_add(&IP.trace, w);
  ASSERT_EQ(IP.cbs++, k); /* in order */
  /* confirmed only once the receiver has the socket (how the other frames
   * interleave with the callbacks is the kernel's and the loop's affair) */
  ASSERT_GE(IP.msgs, k == 1 ? 1 : 3);
  if (k == 1 || k == 2) {
    cnet_socket_t *s = IP.sent[k == 1 ? 0 : 1];
    ASSERT(cnet_socket_destroyed(s)); /* the sender's copy, closed */
  }
  if (k == 2) {
    /* Both received (and still open there), both sender copies closed:
     * exactly as many descriptors as before the sends. */
    ASSERT_EQ(IP.n, fd_count());
    ASSERT_NOT_NULL(IP.got[0]);
    ASSERT_NOT_NULL(IP.got[1]);
    for (int i = 0; i < 2; i++) {
      ASSERT_EQ(0, cnet_socket_end(IP.got[i], NULL, 0, NULL, NULL));
      ASSERT_EQ(0, shutdown(IP.peer[i], SHUT_WR));
    }
    ASSERT_EQ(0, cnet_socket_end(IP.a, NULL, 0, NULL, NULL));
  }
}

static void ip_message(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ch;
  (void)ctx;
  IP.msgs++;
  trace_add(&IP.trace, "message");
  if (IP.msgs == 2) {
    ASSERT(message_is(ev, "between"));
    ASSERT_NULL(ev->message.socket);
    return;
  }
  ASSERT(message_is(ev, IP.msgs == 1 ? "one" : "two"));
  ASSERT_NOT_NULL(ev->message.socket);
  ASSERT_NULL(ev->message.server);
  IP.got[IP.msgs == 1 ? 0 : 1] = ev->message.socket;
  ASSERT(cnet_socket_write(ev->message.socket,
                           IP.msgs == 1 ? "hello one" : "hello two", 9, NULL,
                           NULL) >= 0);
  cnet_socket_resume(ev->message.socket); /* to see the peer's FIN */
}

/* Unix sockets (cnet sockets wrapping socketpair ends) sent between two
 * channels of this process, with a plain message between them: messages
 * arrive in order, callbacks run in order, each sender copy is closed when
 * its callback runs, and at every callback the descriptor count is what
 * the sender's copies plus the receiver's make -- never both kept. */
TEST_CASE(ch21_ipc_sockets_handed_over_in_order_one_owner_each) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_socket_options_t o = {.wrap_fd = true};
  int sv[2];
  char buf[16];

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  IP.a = channel_wrap(loop, sv[0]);
  IP.b = channel_wrap(loop, sv[1]);
  ASSERT_EQ(0, cnet_socket_on(IP.b, CNET_EV_MESSAGE, ip_message, NULL));
  for (int i = 0; i < 2; i++) {
    int p[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, p));
    o.fd = p[0];
    IP.sent[i] = cnet_socket_new(loop, &o);
    ASSERT_NOT_NULL(IP.sent[i]);
    IP.peer[i] = p[1];
  }
  IP.n = fd_count();
  IP.cbs = 1; /* the callbacks are numbered 1 and 2 */
  IN_SEND = true;
  ASSERT_EQ(0, cnet_socket_send_socket(IP.a, "one", 3, IP.sent[0], NULL,
                                       ip_sent, (void *)(uintptr_t)1));
  IN_SEND = false;
  ASSERT_EQ(0, send_text(IP.a, "between", NULL, NULL));
  IN_SEND = true;
  ASSERT_EQ(0, cnet_socket_send_socket(IP.a, "two", 3, IP.sent[1], NULL,
                                       ip_sent, (void *)(uintptr_t)2));
  IN_SEND = false;
  run_bounded(loop, 3000);

  ASSERT_EQ(3, IP.msgs);
  ASSERT_EQ(3, IP.cbs);
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(9, read(IP.peer[i], buf, sizeof(buf)));
    ASSERT_MEM_EQ(buf, i == 0 ? "hello one" : "hello two", 9);
    ASSERT_EQ(0, read(IP.peer[i], buf, sizeof(buf))); /* and EOF */
    close(IP.peer[i]);
    cnet_socket_free(IP.sent[i]);
  }
  cnet_socket_free(IP.a);
  cnet_socket_free(IP.b);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ===== the callback before what the receiver says next
 * ========================== */

static struct {
  cnet_socket_t *a, *b, *sent;
  int peer;
  trace_t trace;
} CO;

static void co_sent(cnet_socket_t *ch, const cnet_error_t *err, void *ctx) {
  (void)ch;
  (void)ctx;
  ASSERT_NULL(err);
  trace_add(&CO.trace, "cb");
}

/* A: the receiver's answer. */
static void co_answer(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  ASSERT(message_is(ev, "thanks"));
  trace_add(&CO.trace, "answer");
  ASSERT_EQ(0, cnet_socket_end(ch, NULL, 0, NULL, NULL));
}

/* B: takes the socket and answers at once. */
static void co_take(cnet_socket_t *ch, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  ASSERT_NOT_NULL(ev->message.socket);
  cnet_socket_destroy(ev->message.socket, NULL);
  ASSERT_EQ(0, send_text(ch, "thanks", NULL, NULL));
}

/* The receiver confirms the hand-off, then answers: the sender's callback
 * (the hand-off is complete) comes before the 'message' with the answer,
 * in the order the two were sent. The header does not say it in so many
 * words; Node's send() callback always precedes anything the child says
 * after receiving, and a listener for the answer must be able to rely on
 * the callback having run (e.g. that the sender's copy is gone). */
TEST_CASE(ch22_send_callback_before_receivers_later_messages) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  cnet_socket_options_t o = {.wrap_fd = true};
  int sv[2], p[2];

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, p));
  CO.a = channel_wrap(loop, sv[0]);
  CO.b = channel_wrap(loop, sv[1]);
  ASSERT_EQ(0, cnet_socket_on(CO.a, CNET_EV_MESSAGE, co_answer, NULL));
  ASSERT_EQ(0, cnet_socket_on(CO.b, CNET_EV_MESSAGE, co_take, NULL));
  o.fd = p[0];
  CO.sent = cnet_socket_new(loop, &o);
  ASSERT_NOT_NULL(CO.sent);
  ASSERT_EQ(0, cnet_socket_send_socket(CO.a, "take", 4, CO.sent, NULL, co_sent,
                                       NULL));
  run_bounded(loop, 3000);

  ASSERT_STR_EQ(CO.trace.buf, "cb answer");
  close(p[1]);
  cnet_socket_free(CO.sent);
  cnet_socket_free(CO.a);
  cnet_socket_free(CO.b);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}
