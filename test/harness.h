/* A tiny test harness for cnet's C tests, in the spirit of libuv's task.h.
 *
 *   TEST_CASE(le01_listen_eaddrinuse_error) {
 *     uv_loop_t *loop = loop_new();
 *     ...
 *     ASSERT_EQ(1, closes);
 *     loop_finish(loop);
 *   }
 *
 * Cases register themselves (in file order) and main() is provided here.
 * Each case runs in a forked child with a 10 s alarm, so a crash or a hang in
 * one shows up as "FAIL name" without hiding the others. The run ends with
 * exactly one line "N passed, M failed"; the exit status is non-zero if
 * anything failed. `test-foo NAME` runs only the case NAME; with
 * HARNESS_NO_FORK=1 in the environment cases run in-process (for gdb).
 *
 * Helpers: loop_new / run_bounded / loop_finish (the loop must end with no
 * handle left and uv_loop_close() == 0), trace_t / trace_add for event
 * order, temp_socket_path() for IPC paths removed at exit, server_port(),
 * closed_port(), have_ipv6(), find_tcp_fd() + int_sockopt() for options on
 * a descriptor the API hides, later() for one-shot timers, fd_count() and
 * fd_is_open() for descriptor ownership.
 *
 * One test file includes this header once: everything here is static.
 */
#ifndef CNET_TEST_HARNESS_H
#define CNET_TEST_HARNESS_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "cnet.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define HARNESS_TIMEOUT_S 10
#define HARNESS_MAX_CASES 256
#define HARNESS_MAX_PATHS 32

/* Every helper is static; not every test file uses every one. */
#define HARNESS_FN static __attribute__((unused))

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- failing ------------------------------------------------------------- */

static const char *harness_current = "";
static void harness_cleanup(void);

static void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

static void harness_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;

  fflush(stdout);
  fprintf(stderr, "%s:%d: [%s] assertion failed: ", file, line,
          harness_current);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  harness_cleanup();
  _exit(1); /* no atexit handlers, no leak report for a failed case */
}

#define FAIL(...) harness_fail(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                           \
  do {                                                                         \
    if (!(cond))                                                               \
      FAIL("%s", #cond);                                                       \
  } while (0)

#define ASSERT_CMP_(a, op, b)                                                  \
  do {                                                                         \
    long long a_ = (long long)(a);                                             \
    long long b_ = (long long)(b);                                             \
    if (!(a_ op b_))                                                           \
      FAIL("%s %s %s (%lld %s %lld)", #a, #op, #b, a_, #op, b_);               \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)

#define ASSERT_NULL(p) ASSERT((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT((p) != NULL)

#define ASSERT_STR_EQ(a, b)                                                    \
  do {                                                                         \
    const char *a_ = (a);                                                      \
    const char *b_ = (b);                                                      \
    if (a_ == NULL || b_ == NULL ? a_ != b_ : strcmp(a_, b_) != 0)             \
      FAIL("%s == %s\n  left:  %s%s%s\n  right: %s%s%s", #a, #b,               \
           a_ ? "\"" : "", a_ ? a_ : "NULL", a_ ? "\"" : "", b_ ? "\"" : "",   \
           b_ ? b_ : "NULL", b_ ? "\"" : "");                                  \
  } while (0)

#define ASSERT_MEM_EQ(a, b, len)                                               \
  do {                                                                         \
    const unsigned char *a_ = (const unsigned char *)(a);                      \
    const unsigned char *b_ = (const unsigned char *)(b);                      \
    size_t len_ = (size_t)(len);                                               \
    for (size_t i_ = 0; i_ < len_; i_++)                                       \
      if (a_[i_] != b_[i_])                                                    \
        FAIL("%s == %s (%zu bytes): first difference at %zu: "                 \
             "0x%02x != 0x%02x",                                               \
             #a, #b, len_, i_, a_[i_], b_[i_]);                                \
  } while (0)

/* ---- registration ------------------------------------------------------- */

typedef struct {
  const char *name;
  void (*fn)(void);
  int line;
} harness_case_t;

static harness_case_t harness_cases[HARNESS_MAX_CASES];
static int harness_ncases;

static void harness_register(const char *name, void (*fn)(void), int line) {
  if (harness_ncases == HARNESS_MAX_CASES) {
    fprintf(stderr, "harness: too many cases\n");
    abort();
  }
  harness_cases[harness_ncases++] = (harness_case_t){name, fn, line};
}

#define TEST_CASE(name)                                                        \
  static void name(void);                                                      \
  __attribute__((constructor)) static void name##_register_(void) {            \
    harness_register(#name, name, __LINE__);                                   \
  }                                                                            \
  static void name(void)

/* ---- temporary paths ---------------------------------------------------- */

static char harness_paths[HARNESS_MAX_PATHS][64];
static int harness_npaths;
static pid_t harness_paths_owner;

static void harness_cleanup(void) {
  if (harness_paths_owner != getpid())
    return; /* a forked child's paths are its own */
  for (int i = 0; i < harness_npaths; i++)
    unlink(harness_paths[i]);
  harness_npaths = 0;
}

/* A unique path under /tmp, not created; removed when the case ends (pass or
 * fail). The storage lives until then. */
HARNESS_FN const char *temp_socket_path(void) {
  static unsigned counter;
  char *p;

  ASSERT(harness_npaths < HARNESS_MAX_PATHS);
  if (harness_paths_owner != getpid()) {
    harness_paths_owner = getpid();
    harness_npaths = 0;
    atexit(harness_cleanup);
  }
  p = harness_paths[harness_npaths++];
  snprintf(p, sizeof(harness_paths[0]), "/tmp/cnet-test-%ld-%u.sock",
           (long)getpid(), counter++);
  unlink(p);
  return p;
}

/* ---- loops -------------------------------------------------------------- */

HARNESS_FN uv_loop_t *loop_new(void) {
  uv_loop_t *loop = malloc(sizeof(*loop));

  ASSERT_NOT_NULL(loop);
  ASSERT_EQ(0, uv_loop_init(loop));
  return loop;
}

static void harness_print_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "  handle %p: %s%s%s%s\n", (void *)h,
          uv_handle_type_name(uv_handle_get_type(h)),
          uv_is_active(h) ? " active" : "", uv_has_ref(h) ? " ref" : "",
          uv_is_closing(h) ? " closing" : "");
}

static void harness_on_watchdog(uv_timer_t *t) {
  unsigned ms = (unsigned)(uintptr_t)t->data;

  fprintf(stderr,
          "[%s] watchdog: the loop was still running after %u ms; "
          "handles:\n",
          harness_current, ms);
  uv_walk(t->loop, harness_print_handle, NULL);
  FAIL("run_bounded(%u ms) timed out", ms);
}

static void harness_free_handle(uv_handle_t *h) {
  free(h);
}

/* uv_run until the loop has nothing left to do (or uv_stop), failing the
 * case if that takes longer than ms. The watchdog is unref'd, so it never
 * keeps the loop alive; it is closed on the way out and its close completes
 * in the next run of the loop (loop_finish does that). */
HARNESS_FN void run_bounded(uv_loop_t *loop, unsigned ms) {
  uv_timer_t *t = malloc(sizeof(*t));

  ASSERT_NOT_NULL(t);
  ASSERT_EQ(0, uv_timer_init(loop, t));
  t->data = (void *)(uintptr_t)ms;
  ASSERT_EQ(0, uv_timer_start(t, harness_on_watchdog, ms, 0));
  uv_unref((uv_handle_t *)t);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)t, harness_free_handle);
}

static void harness_count_handle(uv_handle_t *h, void *arg) {
  (void)h;
  (*(unsigned *)arg)++;
}

/* Run the loop to completion, then insist that it is empty: no handle at all
 * (counted before anything is closed, so a leaked object fails here), and
 * uv_loop_close() succeeds. Frees the loop. */
HARNESS_FN void loop_finish(uv_loop_t *loop) {
  unsigned n = 0;

  run_bounded(loop, 5000);
  uv_run(loop, UV_RUN_DEFAULT); /* completes the watchdog's close */
  uv_walk(loop, harness_count_handle, &n);
  if (n != 0) {
    fprintf(stderr, "[%s] handles left on a finished loop:\n", harness_current);
    uv_walk(loop, harness_print_handle, NULL);
  }
  ASSERT_EQ(0, n);
  ASSERT_EQ(0, uv_loop_close(loop));
  free(loop);
}

/* ---- traces -------------------------------------------------------------- */

typedef struct {
  char buf[2048];
  size_t len;
} trace_t;

/* Appends word, space-separated: compare the whole string with
 * ASSERT_STR_EQ(t.buf, "connect ready data end finish close"). */
HARNESS_FN void trace_add(trace_t *t, const char *word) {
  int n = snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%s%s",
                   t->len != 0 ? " " : "", word);

  ASSERT(n > 0 && (size_t)n < sizeof(t->buf) - t->len);
  t->len += (size_t)n;
}

/* ---- small cnet helpers -------------------------------------------------- */

/* The port a listening TCP server got (listen with port 0). */
HARNESS_FN int server_port(const cnet_server_t *srv) {
  cnet_address_t a;

  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_GT(a.port, 0);
  return a.port;
}

/* A 127.0.0.1 port nobody listens on: bound by the kernel's choice, then
 * released (connecting to it gives ECONNREFUSED). */
HARNESS_FN int closed_port(void) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  ASSERT_GE(fd, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
  ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&sa, &len));
  close(fd);
  return ntohs(sa.sin_port);
}

/* An IPv6 loopback to bind and connect to (cases that need one skip
 * without it). */
HARNESS_FN bool have_ipv6(void) {
  struct sockaddr_in6 sa;
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  bool ok;

  if (fd < 0)
    return false;
  memset(&sa, 0, sizeof(sa));
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  close(fd);
  return ok;
}

/* The API hides descriptors: the TCP socket whose local port is `local`
 * and peer port `remote`, for getsockopt checks; -1 if none. */
HARNESS_FN int find_tcp_fd(int local, int remote) {
  for (int fd = 0; fd < 1024; fd++) {
    struct sockaddr_in a, b;
    socklen_t la = sizeof(a), lb = sizeof(b);

    if (getsockname(fd, (struct sockaddr *)&a, &la) != 0 ||
        a.sin_family != AF_INET || ntohs(a.sin_port) != local)
      continue;
    if (getpeername(fd, (struct sockaddr *)&b, &lb) != 0 ||
        b.sin_family != AF_INET || ntohs(b.sin_port) != remote)
      continue;
    return fd;
  }
  return -1;
}

HARNESS_FN int int_sockopt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);

  ASSERT_EQ(0, getsockopt(fd, level, name, &v, &len));
  return v;
}

/* ---- one-shot timers ----------------------------------------------------- */

typedef struct {
  uv_timer_t timer; /* first: the handle is the allocation */
  void (*fn)(void *arg);
  void *arg;
} harness_later_t;

static void harness_later_closed(uv_handle_t *h) {
  free(h);
}

static void harness_later_fire(uv_timer_t *t) {
  harness_later_t *l = (harness_later_t *)t;

  l->fn(l->arg);
  uv_close((uv_handle_t *)t, harness_later_closed);
}

/* fn(arg) after ms. keep_alive false: the timer alone does not keep the loop
 * running (for ref/unref tests). */
HARNESS_FN void later(uv_loop_t *loop, unsigned ms, void (*fn)(void *),
                      void *arg, bool keep_alive) {
  harness_later_t *l = malloc(sizeof(*l));

  ASSERT_NOT_NULL(l);
  l->fn = fn;
  l->arg = arg;
  ASSERT_EQ(0, uv_timer_init(loop, &l->timer));
  ASSERT_EQ(0, uv_timer_start(&l->timer, harness_later_fire, ms, 0));
  if (!keep_alive)
    uv_unref((uv_handle_t *)&l->timer);
}

/* ---- main ------------------------------------------------------------------
 */

static void harness_on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "harness: case timed out\n";
  ssize_t r = write(2, msg, sizeof(msg) - 1);
  (void)r;
  harness_cleanup();
  _exit(3);
}

static int harness_by_line(const void *a, const void *b) {
  return ((const harness_case_t *)a)->line - ((const harness_case_t *)b)->line;
}

/* Runs one case in a child; returns true if it passed. */
static int harness_run_case(const harness_case_t *c, int fork_cases) {
  pid_t pid;
  int status;

  harness_current = c->name;
  if (!fork_cases) {
    c->fn();
    harness_cleanup();
    return 1;
  }
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return 0;
  }
  if (pid == 0) {
    signal(SIGALRM, harness_on_alarm);
    alarm(HARNESS_TIMEOUT_S);
    c->fn();
    fflush(stdout);
    exit(0); /* atexit: temp paths; ASan: the leak check */
  }
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      perror("waitpid");
      return 0;
    }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 1;
  if (WIFSIGNALED(status))
    fprintf(stderr, "[%s] killed by signal %d\n", c->name, WTERMSIG(status));
  else if (WEXITSTATUS(status) == 3)
    fprintf(stderr, "[%s] timed out after %d s\n", c->name, HARNESS_TIMEOUT_S);
  return 0;
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  const char *nofork = getenv("HARNESS_NO_FORK");
  int fork_cases = nofork == NULL || strcmp(nofork, "1") != 0;
  int passed = 0, failed = 0, matched = 0;

  setvbuf(stdout, NULL, _IOLBF, 0);
  qsort(harness_cases, (size_t)harness_ncases, sizeof(harness_cases[0]),
        harness_by_line);
  for (int i = 0; i < harness_ncases; i++) {
    const harness_case_t *c = &harness_cases[i];
    if (only != NULL && strcmp(only, c->name) != 0)
      continue;
    matched++;
    if (harness_run_case(c, fork_cases)) {
      passed++;
      printf("ok %s\n", c->name);
    } else {
      failed++;
      printf("FAIL %s\n", c->name);
    }
  }
  if (only != NULL && matched == 0) {
    fprintf(stderr, "no case named %s; cases:\n", only);
    for (int i = 0; i < harness_ncases; i++)
      fprintf(stderr, "  %s\n", harness_cases[i].name);
    failed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0 ? 1 : 0;
}

/* ---- descriptors (ownership checks) ------------------------------------ */

/* Open descriptors of this process (the directory's own not counted). */
HARNESS_FN int fd_count_now(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  ASSERT_NOT_NULL(d);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1;
}

/* The count a case starts from. libuv opens a few descriptors once per
 * process with the first loop (the signal lock pipe) and keeps them: make
 * the first loop before counting. */
HARNESS_FN int fd_count(void) {
  static bool warm;

  if (!warm) {
    uv_loop_t l;
    ASSERT_EQ(0, uv_loop_init(&l));
    ASSERT_EQ(0, uv_loop_close(&l));
    warm = true;
  }
  return fd_count_now();
}

HARNESS_FN bool fd_is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}


#endif /* CNET_TEST_HARNESS_H */
