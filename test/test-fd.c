/* new net.Socket({fd, readable, writable}): cnet_socket_new with wrap_fd
 * (issue 7, "Descriptors").
 *
 * Each case wraps a descriptor made with plain system calls -- one end of a
 * socketpair(AF_UNIX), a TCP socket connected with socket()/connect(), the
 * read or the write end of a pipe() -- and talks to the other end with
 * plain read()/write(). Ownership is checked two ways: the wrapped number is
 * closed (EBADF) once the socket has closed, and the number of entries in
 * /proc/self/fd is the same after the case as before it.
 *
 * The expected event orders and error messages come from Node v20.20.2:
 *   {fd: socketpair end}, peer writes then FIN:  data end finish close(false)
 *   {fd: pipe read end, readable only}, EOF:     data end close(false)
 *   ... write() on it:  cb:ERR_STREAM_WRITE_AFTER_END error close(true)
 *   {fd: pipe write end, writable only}, end():  finish close(false)
 *   readyState "readOnly" / "writeOnly"; no 'connect' for a wrapped fd.
 *   new net.Socket({fd}) on a regular file or /dev/null: TypeError
 *     ERR_INVALID_FD_TYPE "Unsupported fd type: FILE"; a closed number or a
 *     directory: "... UNKNOWN"; a UDP socket: "... UDP"; a tty: "... TTY";
 *     fd -1: RangeError ERR_OUT_OF_RANGE 'The value of "fd" is out of
 *     range. It must be >= 0 && <= 2147483647. Received -1'. */
#define _GNU_SOURCE /* posix_openpt, ptsname */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

/* ---- descriptors --------------------------------------------------------- */

/* Up to n bytes from a plain descriptor, waiting at most ms for each part;
 * stops early at EOF. */
static size_t peer_read(int fd, char *buf, size_t n, int ms) {
  size_t got = 0;

  while (got < n) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t r;

    if (poll(&p, 1, ms) <= 0)
      break;
    r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  return got;
}

/* True when the peer's next read is EOF (within ms). */
static bool peer_eof(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char c;

  if (poll(&p, 1, ms) <= 0)
    return false;
  return read(fd, &c, 1) == 0;
}

static void peer_write(int fd, const char *s) {
  size_t n = strlen(s);

  ASSERT_EQ((ssize_t)n, write(fd, s, n));
}

/* ---- one wrapped socket, traced ------------------------------------------ */

static struct {
  cnet_socket_t *s;
  int fd;   /* the wrapped descriptor */
  int peer; /* the other end, plain */
  trace_t trace;
  char rx[256];
  size_t rx_len;
  int connects, closes, errors;
  bool had_error;
  cnet_error_t error;
  /* ready_state seen inside 'end' */
  char state_at_end[16];
  void (*on_data)(void);
  void (*on_end)(void);
} W;

/* Consecutive 'data' events are one word (the kernel cuts reads). */
static void on_wrapped(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  const char *w = cnet_event_name(ev->type);

  char word[80];

  (void)ctx;
  switch (ev->type) {
  case CNET_EV_DATA:
    ASSERT(W.rx_len + ev->data.len <= sizeof(W.rx));
    memcpy(W.rx + W.rx_len, ev->data.base, ev->data.len);
    W.rx_len += ev->data.len;
    if (W.trace.len >= 4 && strcmp(W.trace.buf + W.trace.len - 4, "data") == 0)
      w = NULL;
    break;
  case CNET_EV_CONNECT:
    W.connects++;
    break;
  case CNET_EV_ERROR:
    W.errors++;
    W.error = *ev->error;
    snprintf(word, sizeof(word), "error:%s", ev->error->code);
    w = word;
    break;
  case CNET_EV_END:
    snprintf(W.state_at_end, sizeof(W.state_at_end), "%s",
             cnet_socket_ready_state(s));
    break;
  case CNET_EV_CLOSE:
    W.closes++;
    W.had_error = ev->close.had_error;
    w = ev->close.had_error ? "close(true)" : "close(false)";
    break;
  default:
    break;
  }
  if (w != NULL)
    trace_add(&W.trace, w);
  if (ev->type == CNET_EV_DATA && W.on_data != NULL)
    W.on_data();
  if (ev->type == CNET_EV_END && W.on_end != NULL)
    W.on_end();
}

static void listen_all(cnet_socket_t *s) {
  static const cnet_event_type_t types[] = {
      CNET_EV_CONNECT, CNET_EV_READY, CNET_EV_DATA,  CNET_EV_END,
      CNET_EV_FINISH,  CNET_EV_ERROR, CNET_EV_CLOSE, CNET_EV_TIMEOUT};

  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(s, types[i], on_wrapped, NULL));
}

static cnet_socket_t *wrap(uv_loop_t *loop, int fd, bool readable,
                           bool writable, bool allow_half_open) {
  cnet_socket_options_t o = {.wrap_fd = true,
                             .fd = fd,
                             .readable = readable,
                             .writable = writable,
                             .allow_half_open = allow_half_open};
  cnet_socket_t *s = cnet_socket_new(loop, &o);

  if (s == NULL)
    FAIL("cnet_socket_new(fd %d): %s", fd, cnet_last_error()->message);
  W.s = s;
  W.fd = fd;
  listen_all(s);
  return s;
}

static void write_cb_trace(cnet_socket_t *s, const cnet_error_t *err,
                           void *ctx) {
  char w[80];

  (void)s;
  (void)ctx;
  snprintf(w, sizeof(w), "cb:%s", err != NULL ? err->code : "ok");
  trace_add(&W.trace, w);
}

/* ---- socketpair -----------------------------------------------------------
 */

/* peer "ping" -> socket; socket "pong" -> peer; then the peer's FIN: the
 * socket ends too (allow_half_open false) and closes. */
static void duplex_wrote(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  char buf[8];

  (void)s;
  (void)ctx;
  ASSERT_NULL(err);
  ASSERT_EQ(4, peer_read(W.peer, buf, 4, 1000));
  ASSERT_MEM_EQ(buf, "pong", 4);
  ASSERT_EQ(0, shutdown(W.peer, SHUT_WR));
}

static void duplex_data(void) {
  if (W.rx_len == 4) {
    ASSERT_MEM_EQ(W.rx, "ping", 4);
    ASSERT(cnet_socket_write(W.s, "pong", 4, duplex_wrote, NULL) >= 0);
  }
}

static void socketpair_duplex(bool readable, bool writable) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  W.peer = sv[1];
  W.on_data = duplex_data;
  s = wrap(loop, sv[0], readable, writable, false);
  /* A wrapped descriptor is connected already: open, nothing pending. */
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(!cnet_socket_pending(s));
  ASSERT(!cnet_socket_destroyed(s));
  peer_write(sv[1], "ping");
  run_bounded(loop, 3000);

  ASSERT_STR_EQ(W.trace.buf, "data end finish close(false)");
  ASSERT_EQ(0, W.connects);      /* no 'connect' for a wrapped fd, as Node */
  ASSERT(peer_eof(sv[1], 1000)); /* our FIN reached the peer */
  ASSERT(!fd_is_open(sv[0]));    /* the socket owned it: closed */
  ASSERT_EQ(4, cnet_socket_bytes_read(s));
  ASSERT_EQ(4, cnet_socket_bytes_written(s));
  cnet_socket_free(s);
  close(sv[1]);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(fd01_wraps_socketpair_end) {
  socketpair_duplex(false, false); /* neither given: both directions */
}

TEST_CASE(fd02_readable_and_writable_both_true_is_both_directions) {
  socketpair_duplex(true, true);
}

/* ---- a TCP socket made with socket()/connect() ----------------------------
 */

static cnet_server_t *SRV;

static void tcp_on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                              void *ctx) {
  (void)ctx;
  ASSERT_EQ(0,
            cnet_socket_pipe(ev->connection, ev->connection, NULL)); /* echo */
  cnet_server_close(srv, NULL, NULL);
}

TEST_CASE(fd03_wraps_connected_tcp_socket) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  struct sockaddr_in sa, local;
  socklen_t len = sizeof(local);
  cnet_address_t a;
  int port, fd;
  cnet_socket_t *s;

  SRV = cnet_create_server(loop, NULL, tcp_on_connection, NULL);
  ASSERT_NOT_NULL(SRV);
  ASSERT_EQ(0, cnet_server_listen_port(SRV, 0, "127.0.0.1", 0, NULL, NULL));
  port = server_port(SRV);

  fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
  ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&local, &len));

  s = wrap(loop, fd, false, false, false);
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  /* Detected as TCP: addresses are IPv4 ones, and TCP options apply. */
  ASSERT_EQ(0, cnet_socket_remote_address(s, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  ASSERT_EQ(port, a.port);
  ASSERT_EQ(4, a.family);
  ASSERT_EQ(0, cnet_socket_address(s, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  ASSERT_EQ(ntohs(local.sin_port), a.port);
  ASSERT_EQ(4, a.family);
  cnet_socket_set_no_delay(s, true);
  ASSERT_EQ(1, int_sockopt(fd, IPPROTO_TCP, TCP_NODELAY));

  ASSERT_EQ(0, cnet_socket_end(s, "echo me", 7, NULL, NULL));
  run_bounded(loop, 3000);

  ASSERT_EQ(7, W.rx_len);
  ASSERT_MEM_EQ(W.rx, "echo me", 7);
  ASSERT_EQ(0, W.connects);
  ASSERT_EQ(0, W.errors);
  ASSERT_EQ(1, W.closes);
  ASSERT(!W.had_error);
  ASSERT(strstr(W.trace.buf, "data") != NULL);
  ASSERT(strstr(W.trace.buf, "end") != NULL);
  ASSERT(strstr(W.trace.buf, "finish") != NULL);
  ASSERT(!fd_is_open(fd));
  cnet_socket_free(s);
  cnet_server_free(SRV);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ---- pipe(): the read end, readable only ----------------------------------
 */

TEST_CASE(fd04_pipe_read_end_readable_only) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int p[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, pipe(p));
  s = wrap(loop, p[0], true, false, false);
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "readOnly");
  ASSERT(!cnet_socket_connecting(s));
  peer_write(p[1], "from the parent");
  close(p[1]);
  run_bounded(loop, 3000);

  /* Node: data end close(false) -- no 'finish', the writable side never
   * existed. */
  ASSERT_STR_EQ(W.trace.buf, "data end close(false)");
  ASSERT_EQ(15, W.rx_len);
  ASSERT_MEM_EQ(W.rx, "from the parent", 15);
  ASSERT(!fd_is_open(p[0]));
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

static void write_on_read_only(void) {
  int r = cnet_socket_write(W.s, "x", 1, write_cb_trace, NULL);

  /* A failure at run time, not misuse: not negative, and not "sent". */
  ASSERT_EQ(0, r);
}

TEST_CASE(fd05_readable_only_write_fails_as_after_end) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int p[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, pipe(p));
  s = wrap(loop, p[0], true, false, false);
  W.on_data = write_on_read_only;
  peer_write(p[1], "abc"); /* the write end stays open: no 'end' first */
  run_bounded(loop, 3000);

  ASSERT_STR_EQ(
      W.trace.buf,
      "data cb:ERR_STREAM_WRITE_AFTER_END error:ERR_STREAM_WRITE_AFTER_END "
      "close(true)");
  ASSERT_STR_EQ(W.error.code, "ERR_STREAM_WRITE_AFTER_END");
  ASSERT_EQ(CNET_ERR_STREAM_WRITE_AFTER_END, W.error.errnum);
  ASSERT_STR_EQ(W.error.message, "write after end");
  ASSERT(!fd_is_open(p[0]));
  close(p[1]);
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ---- pipe(): the write end, writable only ---------------------------------
 */

static void check_quiet_then_end(void *arg) {
  (void)arg;
  /* Nothing happened since the write: a write-only socket never reads (a
   * read on a pipe's write end would be an error) and 'end' never comes. */
  ASSERT_STR_EQ(W.trace.buf, "cb:ok");
  ASSERT_STR_EQ(cnet_socket_ready_state(W.s), "writeOnly");
  ASSERT_EQ(0, cnet_socket_end(W.s, NULL, 0, NULL, NULL));
}

TEST_CASE(fd06_pipe_write_end_writable_only) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  char buf[16];
  int p[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, pipe(p));
  s = wrap(loop, p[1], false, true, false);
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "writeOnly");
  ASSERT(cnet_socket_write(s, "to the child", 12, write_cb_trace, NULL) >= 0);
  later(loop, 150, check_quiet_then_end, NULL, true);
  run_bounded(loop, 3000);

  ASSERT_STR_EQ(W.trace.buf, "cb:ok finish close(false)");
  ASSERT_EQ(12, peer_read(p[0], buf, sizeof(buf), 1000));
  ASSERT_MEM_EQ(buf, "to the child", 12);
  ASSERT(peer_eof(p[0], 1000)); /* the write end was closed by the socket */
  ASSERT(!fd_is_open(p[1]));
  close(p[0]);
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* The same on a socketpair end, where reading would be possible: the peer's
 * bytes and FIN stay unread in the kernel. */
static void check_unread(void *arg) {
  int pending = -1;

  (void)arg;
  ASSERT_STR_EQ(W.trace.buf, "cb:ok");
  ASSERT_EQ(0, ioctl(W.fd, FIONREAD, &pending));
  ASSERT_EQ(6, pending);
  ASSERT_EQ(0, cnet_socket_end(W.s, NULL, 0, NULL, NULL));
}

TEST_CASE(fd07_writable_only_never_reads_and_end_never_comes) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  char buf[8];
  int sv[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  s = wrap(loop, sv[0], false, true, false);
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "writeOnly");
  peer_write(sv[1], "unread");
  ASSERT_EQ(0, shutdown(sv[1], SHUT_WR));
  ASSERT(cnet_socket_write(s, "hi", 2, write_cb_trace, NULL) >= 0);
  later(loop, 150, check_unread, NULL, true);
  run_bounded(loop, 3000);

  ASSERT_STR_EQ(W.trace.buf, "cb:ok finish close(false)");
  ASSERT_EQ(0, W.rx_len);
  ASSERT_EQ(2, peer_read(sv[1], buf, sizeof(buf), 1000));
  ASSERT_MEM_EQ(buf, "hi", 2);
  ASSERT(peer_eof(sv[1], 1000));
  ASSERT(!fd_is_open(sv[0]));
  close(sv[1]);
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ---- allow_half_open ----------------------------------------------------- */

static void half_open_end(void) {
  ASSERT(cnet_socket_write(W.s, "late", 4, NULL, NULL) >= 0);
  ASSERT_EQ(0, cnet_socket_end(W.s, NULL, 0, NULL, NULL));
}

TEST_CASE(fd08_allow_half_open_writes_after_peer_end) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  char buf[8];
  int sv[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  s = wrap(loop, sv[0], false, false, true);
  W.on_end = half_open_end;
  peer_write(sv[1], "q");
  ASSERT_EQ(0, shutdown(sv[1], SHUT_WR));
  run_bounded(loop, 3000);

  ASSERT_STR_EQ(W.trace.buf, "data end finish close(false)");
  ASSERT_STR_EQ(W.state_at_end, "writeOnly"); /* Node's readyState there */
  ASSERT_EQ(4, peer_read(sv[1], buf, sizeof(buf), 1000));
  ASSERT_MEM_EQ(buf, "late", 4);
  ASSERT(peer_eof(sv[1], 1000));
  ASSERT(!fd_is_open(sv[0]));
  close(sv[1]);
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ---- ownership without any I/O ------------------------------------------- */

TEST_CASE(fd09_descriptor_closed_when_socket_freed) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2], p[2];
  cnet_socket_t *a, *b, *c;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ASSERT_EQ(0, pipe(p));
  a = wrap(loop, sv[0], false, false, false);
  b = wrap(loop, p[0], true, false, false);
  c = wrap(loop, p[1], false, true, false);
  cnet_socket_free(a); /* never ran the loop: free alone closes them */
  cnet_socket_free(b);
  cnet_socket_free(c);
  loop_finish(loop);
  ASSERT(!fd_is_open(sv[0]));
  ASSERT(!fd_is_open(p[0]));
  ASSERT(!fd_is_open(p[1]));
  ASSERT(peer_eof(sv[1], 1000));
  close(sv[1]);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(fd10_descriptor_closed_by_destroy) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2];
  cnet_socket_t *s;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  s = wrap(loop, sv[0], false, false, false);
  cnet_socket_destroy(s, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(W.trace.buf, "close(false)");
  ASSERT(!fd_is_open(sv[0]));
  ASSERT(peer_eof(sv[1], 1000));
  close(sv[1]);
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(before, fd_count());
}

/* ---- ERR_INVALID_FD_TYPE --------------------------------------------------
 */

/* cnet_socket_new(wrap fd) fails at once with Node's error; the descriptor,
 * not taken, is still open and the caller's. */
static void expect_bad_fd(int fd, const char *type_name, bool open_after) {
  uv_loop_t *loop = loop_new();
  cnet_socket_options_t o = {.wrap_fd = true, .fd = fd};
  char want[64];
  const cnet_error_t *e;

  ASSERT_NULL(cnet_socket_new(loop, &o));
  e = cnet_last_error();
  snprintf(want, sizeof(want), "Unsupported fd type: %s", type_name);
  ASSERT_EQ(CNET_ERR_INVALID_FD_TYPE, e->errnum);
  ASSERT_STR_EQ(e->code, "ERR_INVALID_FD_TYPE");
  ASSERT_STR_EQ(e->message, want);
  ASSERT_STR_EQ(cnet_err_name(e->errnum), "ERR_INVALID_FD_TYPE");
  if (open_after)
    ASSERT(fd_is_open(fd));
  loop_finish(loop);
}

TEST_CASE(fd11_regular_file_is_unsupported_fd_type_file) {
  int before = fd_count();
  char path[] = "/tmp/cnet-test-fd-XXXXXX";
  int fd = mkstemp(path);
  int null_fd;

  ASSERT_GE(fd, 0);
  unlink(path);
  expect_bad_fd(fd, "FILE", true);
  close(fd);
  null_fd = open("/dev/null", O_RDWR); /* a character device: FILE too */
  ASSERT_GE(null_fd, 0);
  expect_bad_fd(null_fd, "FILE", true);
  close(null_fd);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(fd12_closed_descriptor_is_unsupported_fd_type_unknown) {
  int before = fd_count();
  int fd = open("/dev/null", O_RDONLY);
  int dir;

  ASSERT_GE(fd, 0);
  close(fd); /* a number that is now no descriptor */
  expect_bad_fd(fd, "UNKNOWN", false);
  ASSERT(!fd_is_open(fd));
  dir = open("/tmp", O_RDONLY | O_DIRECTORY); /* Node: UNKNOWN as well */
  ASSERT_GE(dir, 0);
  expect_bad_fd(dir, "UNKNOWN", true);
  close(dir);
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(fd13_datagram_socket_is_unsupported_fd_type_udp) {
  int before = fd_count();
  int fd = socket(AF_INET, SOCK_DGRAM, 0);

  ASSERT_GE(fd, 0);
  expect_bad_fd(fd, "UDP", true);
  close(fd);
  if (have_ipv6()) {
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    expect_bad_fd(fd, "UDP", true);
    close(fd);
  }
  ASSERT_EQ(before, fd_count());
}

TEST_CASE(fd14_terminal_is_unsupported_fd_type_tty) {
  int before = fd_count();
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  int slave;

  if (master < 0) {
    printf("# skipped: no pseudo-terminal (%s)\n", strerror(errno));
    return;
  }
  ASSERT_EQ(0, grantpt(master));
  ASSERT_EQ(0, unlockpt(master));
  slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(slave, 0);
  expect_bad_fd(slave, "TTY", true);
  close(slave);
  close(master);
  ASSERT_EQ(before, fd_count());
}

/* Not an ERR_INVALID_FD_TYPE: the header is silent, Node v20 throws
 * RangeError ERR_OUT_OF_RANGE for fd -1 (validateInt32(fd, 'fd', 0)). */
TEST_CASE(fd15_negative_fd_is_out_of_range) {
  uv_loop_t *loop = loop_new();
  cnet_socket_options_t o = {.wrap_fd = true, .fd = -1};
  const cnet_error_t *e;

  ASSERT_NULL(cnet_socket_new(loop, &o));
  e = cnet_last_error();
  ASSERT_STR_EQ(e->code, "ERR_OUT_OF_RANGE");
  ASSERT_STR_EQ(e->message, "The value of \"fd\" is out of range. It must be "
                            ">= 0 && <= 2147483647. Received -1");
  loop_finish(loop);
}

/* wrap_fd false: fd is ignored (0 is a real descriptor, so the flag, not the
 * number, asks for wrapping): the socket is a plain new one and the
 * descriptor is left alone. */
TEST_CASE(fd16_fd_ignored_without_wrap_fd) {
  int before = fd_count();
  uv_loop_t *loop = loop_new();
  int sv[2];
  cnet_socket_options_t o = {.readable = true};
  cnet_socket_t *s;

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  o.fd = sv[0];
  s = cnet_socket_new(loop, &o);
  ASSERT_NOT_NULL(s);
  ASSERT(cnet_socket_pending(s)); /* no connection: Node's pending */
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT(fd_is_open(sv[0]));
  close(sv[0]);
  close(sv[1]);
  ASSERT_EQ(before, fd_count());
}
