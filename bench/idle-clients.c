/* idle-clients: open K connections to an echo server and hold them, idle.
 *
 *   idle-clients [-k K] [-c CONCURRENT] [-t SECONDS] PORT|HOST:PORT|PATH
 *
 * The load generator of bench/idle-memory.sh, written directly on sockets
 * and epoll so that it shares no code with what it measures (cnet, libuv).
 * A number is a TCP port on 127.0.0.1, HOST:PORT an IPv4 address and port,
 * anything else a Unix socket path.
 *
 * Each connection is opened with a non-blocking connect, sends one byte and
 * waits for its echo: only then do we know the server accepted it and has
 * set it up for reading and writing, so the server's memory now includes
 * everything an accepted, idle connection costs. At most CONCURRENT
 * connections (default 256) are in that handshake at once, so the listen
 * backlog never overflows and no SYN waits for a one-second retransmit.
 *
 * When all K are up it prints "ready K" on stdout, then holds them, sending
 * nothing, until stdin reaches end-of-file (when stdin is a pipe or a
 * terminal) or SIGTERM / SIGINT arrives; then it closes them and exits 0.
 * A connection the server closes or resets while held is an error: exit 1.
 * Setting up must finish within SECONDS (default 60), or exit 1 with a count
 * of where the connections are stuck.
 *
 * The soft RLIMIT_NOFILE is raised to the hard limit when K needs it; if
 * the hard limit is too low, it says so and exits 2 before connecting. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum state { WAITING, CONNECTING, ECHOING, HELD };

struct conn {
  int fd;
  enum state state;
};

static struct sockaddr_storage target;
static socklen_t target_len;
static struct conn *conns;
static int nconns;
static int epfd;

/* The tag of an epoll event: the connection's index, or one of these. */
#define TAG_STDIN (-1)
#define TAG_SIGNAL (-2)

static void die(const char *what) {
  fprintf(stderr, "idle-clients: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void) {
  fprintf(stderr, "usage: idle-clients [-k K] [-c CONCURRENT] [-t SECONDS] "
                  "PORT|HOST:PORT|PATH\n");
  exit(64);
}

static void parse_target(const char *arg) {
  char host[64] = "127.0.0.1";
  const char *colon = strrchr(arg, ':');
  const char *port = colon != NULL ? colon + 1 : arg;
  char *end;
  long p = strtol(port, &end, 10);

  memset(&target, 0, sizeof(target));
  if (*port != '\0' && *end == '\0' && p > 0 && p < 65536 &&
      (colon == NULL || (size_t)(colon - arg) < sizeof(host))) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&target;

    if (colon != NULL) {
      memcpy(host, arg, colon - arg);
      host[colon - arg] = '\0';
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)p);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
      fprintf(stderr, "idle-clients: not an IPv4 address: %s\n", host);
      exit(64);
    }
    target_len = sizeof(*sin);
  } else {
    struct sockaddr_un *sun = (struct sockaddr_un *)&target;

    if (strlen(arg) >= sizeof(sun->sun_path)) {
      fprintf(stderr, "idle-clients: path too long: %s\n", arg);
      exit(64);
    }
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, arg);
    target_len = sizeof(*sun);
  }
}

/* K connections, plus stdio, the epoll and signal descriptors, and slack. */
static void raise_nofile(int k) {
  struct rlimit rl;
  rlim_t need = (rlim_t)k + 16;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("getrlimit");
  if (rl.rlim_cur >= need)
    return;
  if (rl.rlim_max < need) {
    fprintf(stderr,
            "idle-clients: %d connections need %lu descriptors, but the hard "
            "limit (ulimit -Hn) is %lu; raise it (as root: prlimit "
            "--nofile=%lu, or ulimit -Hn %lu) or lower -k\n",
            k, (unsigned long)need, (unsigned long)rl.rlim_max,
            (unsigned long)need, (unsigned long)need);
    exit(2);
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("setrlimit");
}

static void watch(int fd, uint32_t events, int tag, int op) {
  struct epoll_event ev = {.events = events,
                           .data.u64 = (uint64_t)(int64_t)tag};

  if (epoll_ctl(epfd, op, fd, &ev) != 0)
    die("epoll_ctl");
}

static void fail_conn(int i, const char *what, int err) {
  fprintf(stderr, "idle-clients: connection %d: %s: %s\n", i, what,
          err ? strerror(err) : "closed by the server");
  exit(1);
}

/* Start connection i. Returns false when a Unix listener's backlog is full
 * (EAGAIN): the caller tries it again later. */
static bool start_conn(int i) {
  int type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  int fd = socket(target.ss_family, type, 0);

  if (fd < 0)
    die("socket");
  if (target.ss_family == AF_INET) {
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (connect(fd, (struct sockaddr *)&target, target_len) != 0 &&
      errno != EINPROGRESS) {
    if (errno == EAGAIN) {
      close(fd);
      return false;
    }
    fail_conn(i, "connect", errno);
  }
  conns[i].fd = fd;
  conns[i].state = CONNECTING;
  watch(fd, EPOLLOUT, i, EPOLL_CTL_ADD);
  return true;
}

static void on_writable(int i) {
  int err = 0;
  socklen_t len = sizeof(err);

  if (getsockopt(conns[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    die("getsockopt");
  if (err != 0)
    fail_conn(i, "connect", err);
  if (write(conns[i].fd, "x", 1) != 1)
    fail_conn(i, "write", errno);
  conns[i].state = ECHOING;
  watch(conns[i].fd, EPOLLIN | EPOLLRDHUP, i, EPOLL_CTL_MOD);
}

/* Returns true when connection i has just become HELD. */
static bool on_readable(int i) {
  char c;
  ssize_t n = read(conns[i].fd, &c, 1);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return false;
  if (conns[i].state == HELD) /* the server closed, reset or sent data */
    fail_conn(i, "while held", n < 0 ? errno : 0);
  if (n != 1)
    fail_conn(i, "waiting for the echo", n < 0 ? errno : 0);
  if (c != 'x') {
    fprintf(stderr, "idle-clients: connection %d: echoed 0x%02x, sent 'x'\n", i,
            (unsigned char)c);
    exit(1);
  }
  conns[i].state = HELD;
  return true;
}

static void report_stuck(int k) {
  int count[4] = {0};

  for (int i = 0; i < k; i++)
    count[conns[i].state]++;
  fprintf(stderr,
          "idle-clients: timed out: %d held, %d waiting for their echo, %d "
          "connecting, %d not started\n",
          count[HELD], count[ECHOING], count[CONNECTING], count[WAITING]);
}

static int setup_signals(void) {
  sigset_t set;
  int fd;

  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
    die("sigprocmask");
  fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0)
    die("signalfd");
  return fd;
}

/* stdin is watched only if epoll can watch it (a pipe, a terminal, a
 * socket); a file or /dev/null cannot say "closed", so then only a signal
 * stops us. */
static void watch_stdin(void) {
  struct epoll_event ev = {.events = EPOLLIN,
                           .data.u64 = (uint64_t)(int64_t)TAG_STDIN};

  if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) != 0 && errno != EPERM &&
      errno != EBADF)
    die("epoll_ctl(stdin)");
}

/* Returns true to stop. */
static bool on_stdin(void) {
  char buf[256];
  ssize_t n = read(0, buf, sizeof(buf));

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return false;
  if (n <= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
    return true;
  }
  return false;
}

int main(int argc, char **argv) {
  int k = 10000, concurrent = 256, timeout = 60, opt;
  int next = 0, active = 0, held = 0, sigfd;
  bool stop = false, announced = false;
  struct epoll_event events[256];
  double start, deadline;

  while ((opt = getopt(argc, argv, "k:c:t:h")) != -1) {
    switch (opt) {
    case 'k':
      k = atoi(optarg);
      break;
    case 'c':
      concurrent = atoi(optarg);
      break;
    case 't':
      timeout = atoi(optarg);
      break;
    default:
      usage();
    }
  }
  if (optind != argc - 1 || k < 1 || concurrent < 1 || timeout < 1)
    usage();
  parse_target(argv[optind]);
  raise_nofile(k);
  conns = calloc((size_t)k, sizeof(*conns));
  if (conns == NULL)
    die("calloc");
  nconns = k;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");
  sigfd = setup_signals();
  watch(sigfd, EPOLLIN, TAG_SIGNAL, EPOLL_CTL_ADD);
  watch_stdin();

  start = now();
  deadline = start + timeout;
  while (!stop) {
    while (next < k && active < concurrent && start_conn(next)) {
      next++;
      active++;
    }
    if (held == k && !announced) {
      printf("ready %d\n", k);
      fflush(stdout);
      fprintf(stderr, "idle-clients: %d connections up in %.2f s\n", k,
              now() - start);
      announced = true;
    }
    if (!announced && now() > deadline) {
      report_stuck(k);
      return 1;
    }
    /* A Unix listener that said EAGAIN: try again in a millisecond. */
    int wait_ms = announced ? -1 : (next < k && active < concurrent) ? 1 : 100;
    int n = epoll_wait(epfd, events, 256, wait_ms);

    if (n < 0 && errno != EINTR)
      die("epoll_wait");
    for (int j = 0; j < n; j++) {
      int tag = (int)(int64_t)events[j].data.u64;

      if (tag == TAG_SIGNAL) {
        stop = true;
      } else if (tag == TAG_STDIN) {
        stop = on_stdin() || stop;
      } else if (conns[tag].state == CONNECTING) {
        on_writable(tag);
      } else if (on_readable(tag)) {
        active--;
        held++;
      }
    }
  }
  for (int i = 0; i < nconns; i++)
    if (conns[i].state != WAITING)
      close(conns[i].fd);
  fprintf(stderr, "idle-clients: closed %d connections\n", next);
  return announced ? 0 : 1;
}
