/* soak-client: the load side of `make soak`. Plain non-blocking sockets and
 * one epoll instance -- no cnet, no libuv -- so it shares no code with what
 * it tests.
 *
 *   soak-client --port P [options]
 *
 * Keeps N connections (-c, default 10000) open to 127.0.0.1:P for
 * --seconds S (default 60), opened over the first --ramp-seconds (5) so the
 * scripts do not run in lockstep. Each connection runs a script drawn at
 * random (seeded: --seed, printed either way), and when the script is over
 * the slot reconnects, so N stay live:
 *
 *   0..--max-steps (8) echo steps, each of a random size in 1 B..256 KiB
 *     (--max-size; mostly small, see draw_size): written while reading,
 *     every byte that comes back compared with what was written at that
 *     stream offset. A quarter of the steps stop reading for
 *     50..--max-pause-ms at a random point, so the server's writes back up
 *     (its write() returns 0, its pipe pauses). Between steps an idle gap
 *     of 0..--max-gap-ms. Both default to 3/10 and 3/5 of the server's
 *     timeout: the server must not time these connections out.
 *   then one ending:
 *     close      after the last echo, close(): a FIN
 *     half-close shutdown(SHUT_WR) as soon as the last step is written,
 *                echo still in flight; the whole echo must still arrive,
 *                then the server's FIN (allowHalfOpen)
 *     reset      in the middle of the last step (or at once with no step),
 *                SO_LINGER 0 and close(): an RST with data in flight
 *     timeout    go idle and wait for the server's idle timeout
 *                (--server-timeout, default 5000 ms, as soak-server's) to
 *                close the connection: a FIN, no earlier than the timeout
 *                after our last write (less --early-slack-ms, 300: libuv's
 *                cached clock lets a timer fire up to one loop iteration
 *                early) and no later than 15 s past it
 *
 * When the time is up no new connection is opened; every open one stops
 * writing, shuts down its side and reads (verifying) until the server's FIN
 * (--drain-seconds, 30, for all of them), so the server sees clients leave
 * well and ends with no connection open.
 *
 * Failures: a wrong byte, a byte too many, an early or missing FIN, a reset
 * from the server, a connection that makes no progress for --stall-seconds
 * (20) while it should, a failed connect. Each is one line on stderr naming
 * the connection, its script and stream offsets; after --max-errors (10)
 * the run stops. Exit 0 when there were none, 1 otherwise, 2 on a setup
 * problem (RLIMIT_NOFILE too low, ...), 64 on a usage error.
 *
 * Output: progress lines on stderr every 5 s; at the end a summary on
 * stdout, including one "result" line of key=value pairs (run.sh reads it).
 *
 * Efficiency: no allocation after setup; writes straight from a 1 MiB
 * pseudo-random pattern (each connection at its own offset) and one 256 KiB
 * read buffer, as bench/loadgen.c does; level-triggered epoll; timers are a
 * per-connection wake time scanned every 10 ms (10k compares, cheap). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- pattern --- */

#define PAT_LEN (1u << 20)
#define PAT_EXT (256u * 1024)
static unsigned char pat[PAT_LEN + PAT_EXT]; /* first PAT_EXT repeated */
static unsigned char rbuf[PAT_EXT];

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s) {
  return mix((*s)++);
}

static void fill_pattern(uint64_t seed) {
  for (size_t i = 0; i < PAT_LEN; i += 8) {
    uint64_t v = mix(seed + i);

    memcpy(pat + i, &v, 8);
  }
  memcpy(pat + PAT_LEN, pat, PAT_EXT);
}

/* ------------------------------------------------------------ options --- */

static int nconns = 10000;
static double seconds = 60;
static int port;
static uint64_t seed;
static int server_timeout_ms = 5000;
static int max_size = 256 * 1024;
static int max_pause_ms = -1, max_gap_ms = -1; /* from the timeout */
static int early_slack_ms = 300;
static int stall_s = 20, drain_s = 30;
static int sources = 4, concurrent = 256, max_errors = 10;
static int max_steps = 8;
static int ramp_s = 5;

/* --------------------------------------------------------- connections --- */

enum state {
  C_FREE,
  C_CONNECTING,
  C_STEP,    /* an echo step: writing and/or reading */
  C_GAP,     /* idle between steps (short of the server's timeout) */
  C_TIMEOUT, /* idle, waiting for the server's timeout to close us */
  C_HALF,    /* our side shut down: reading the rest of the echo, then FIN */
};
static const char *const state_name[] = {"free", "connecting",   "step",
                                         "gap",  "timeout-wait", "half-closed"};

enum ending { E_CLOSE, E_HALF, E_RESET, E_TIMEOUT, E_COUNT };
static const char *const ending_name[] = {"close", "half-close", "reset",
                                          "timeout"};

struct conn {
  int fd;
  uint8_t state, ending;
  uint8_t steps_left, steps_total;
  bool registered;    /* in the epoll set */
  bool in_on, out_on; /* EPOLLIN / EPOLLOUT in the interest set */
  bool paused;        /* reading stopped on purpose */
  bool draining;      /* the run is over: shut down, read to the FIN */
  uint32_t gen;       /* opens of this slot: tags epoll events */
  uint32_t base;      /* its offset in the pattern */
  uint64_t rng;
  uint64_t sent, recvd; /* stream offsets */
  uint64_t target;      /* end of the current step */
  uint64_t limit;       /* write no further (reset point, or target) */
  uint64_t pause_at;    /* stop reading at this offset (UINT64_MAX: no) */
  uint32_t pause_ms;
  uint64_t wake;       /* ns: pause/gap end, timeout deadline, or stall */
  uint64_t last_write; /* ns: our last write (or connect) */
  uint64_t last_read;  /* ns: our last read of echoed bytes (diagnostics) */
  uint64_t t_open, t_connected; /* ns (diagnostics) */
  uint64_t t_step; /* ns: the current step began, pauses excluded */
};

#define LAT_BUCKETS 20

static struct conn *conns;
static int epfd;
static struct sockaddr_in target_addr;
static int src_next;
static int *startq, sq_head, sq_len, in_flight;
static int open_now, peak_open;
static bool stopping;
static volatile sig_atomic_t got_signal;
static uint64_t t_start, t_stop, drain_deadline;

static struct {
  uint64_t opened, connected, scripts, steps, pauses, gaps;
  uint64_t ending[E_COUNT];
  uint64_t drained; /* connections ended by the end of the run */
  uint64_t bytes_sent, bytes_verified;
  uint64_t timeout_min_ms, timeout_max_ms; /* observed server timeouts */
  uint64_t slow_connects, max_connect_ns;  /* handshakes over 1 s, longest */
  uint64_t lat[LAT_BUCKETS], lat_max_ms;   /* step latency, pauses excluded */
  uint64_t errors;
} st = {.timeout_min_ms = UINT64_MAX};

static uint64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MS(x) ((uint64_t)(x)*1000000ull)

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void print_summary(FILE *to);

static void close_conn(struct conn *c, bool rst);

/* One failure: say what and where, count it, drop the connection (its slot
 * reconnects unless the run is over). */
static void fail(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct conn *c, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr,
          "soak-client: connection %d (open #%u, %s ending, %d/%d "
          "steps left, state %s%s): ",
          (int)(c - conns), c->gen, ending_name[c->ending], c->steps_left,
          c->steps_total, state_name[c->state],
          c->draining ? ", draining" : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  {
    uint64_t now = now_ns();

    fprintf(stderr,
            " [written %" PRIu64 ", verified %" PRIu64 "; step to %" PRIu64
            "; ms since: open %" PRIu64 ", connected %" PRIu64
            ", last write %" PRIu64 ", last read %" PRIu64 "]\n",
            c->sent, c->recvd, c->target, (now - c->t_open) / 1000000u,
            c->t_connected ? (now - c->t_connected) / 1000000u : 0,
            (now - c->last_write) / 1000000u,
            c->last_read ? (now - c->last_read) / 1000000u : 0);
  }
  st.errors++;
  close_conn(c, true);
  if (st.errors >= (uint64_t)max_errors) {
    fprintf(stderr, "soak-client: %d errors, giving up\n", max_errors);
    print_summary(stdout);
    exit(1);
  }
}

/* The interest set follows what the connection waits for. Wanting nothing
 * (paused, nothing to write) takes the descriptor out of the set: a
 * level-triggered EPOLLHUP -- our FIN and the server's, while paused in a
 * half-close -- is reported whatever the mask, and would spin the loop. */
static void set_interest(struct conn *c) {
  bool want_in = !c->paused;
  bool want_out =
      c->state == C_CONNECTING || (c->state == C_STEP && c->sent < c->limit);
  struct epoll_event ev = {
      .events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0),
      .data.u64 = (uint64_t)(c - conns) | ((uint64_t)c->gen << 32)};

  if (!want_in && !want_out) {
    if (c->registered && epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL) != 0)
      die("epoll_ctl");
    c->registered = c->in_on = c->out_on = false;
    return;
  }
  if (c->registered && want_in == c->in_on && want_out == c->out_on)
    return;
  if (epoll_ctl(epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
                &ev) != 0)
    die("epoll_ctl");
  c->registered = true;
  c->in_on = want_in;
  c->out_on = want_out;
}

static void queue_start(int i) {
  startq[(sq_head + sq_len) % nconns] = i;
  sq_len++;
}

static void close_conn(struct conn *c, bool rst) {
  if (c->state == C_FREE)
    return;
  if (c->state == C_CONNECTING)
    in_flight--;
  if (rst) { /* SO_LINGER 0: close() sends an RST, not a FIN */
    struct linger l = {.l_onoff = 1, .l_linger = 0};

    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close(c->fd); /* also leaves the epoll set */
  c->fd = -1;
  c->registered = false;
  c->state = C_FREE;
  c->wake = 0;
  open_now--;
  if (!stopping)
    queue_start((int)(c - conns));
}

/* ------------------------------------------------------------- scripts --- */

static void begin_step(struct conn *c, uint64_t now);
static void end_script(struct conn *c, uint64_t now);

static void stall_clock(struct conn *c, uint64_t now) {
  c->wake = now + MS(1000) * (uint64_t)stall_s;
}

/* Draw the script when the connection is made. */
static void start_script(struct conn *c, uint64_t now) {
  uint64_t r = rnd(&c->rng) % 100;

  c->ending = r < 25 ? E_CLOSE : r < 55 ? E_HALF : r < 75 ? E_RESET : E_TIMEOUT;
  c->steps_total = c->steps_left =
      (uint8_t)(rnd(&c->rng) % (uint64_t)(max_steps + 1));
  c->last_write = now;
  if (c->steps_left > 0)
    begin_step(c, now);
  else
    end_script(c, now);
}

/* 1..max_size: a power of two 2^k drawn as the smaller of two uniform draws
 * of k (so small sizes are common and 128..256 KiB steps rare, about 1 in
 * 120), then uniform below it. The mean is about 2 KiB: 10 000 connections
 * stepping every few hundred ms stay within what two shared cores can echo,
 * so latency stays far below the server's timeout (a saturated loop would
 * delay echoes by seconds and the server would rightly time them out). */
static uint64_t draw_size(struct conn *c) {
  uint64_t bits = 0, k1, k2, n;

  while (((uint64_t)1 << bits) < (uint64_t)max_size)
    bits++;
  k1 = rnd(&c->rng) % (bits + 1);
  k2 = rnd(&c->rng) % (bits + 1);
  n = (uint64_t)1 << (k1 < k2 ? k1 : k2);
  n = 1 + rnd(&c->rng) % n;
  return n > (uint64_t)max_size ? (uint64_t)max_size : n;
}

/* Stop reading for pause_ms: the server's writes back up meanwhile. */
static void start_pause(struct conn *c, uint64_t now) {
  c->pause_at = UINT64_MAX;
  c->paused = true;
  st.pauses++;
  c->wake = now + MS(c->pause_ms);
  c->t_step += MS(c->pause_ms); /* the pause is not echo latency */
}

static void begin_step(struct conn *c, uint64_t now) {
  uint64_t n = draw_size(c);

  c->state = C_STEP;
  c->t_step = now;
  c->target = c->sent + n;
  c->limit = c->target;
  c->pause_at = UINT64_MAX;
  if (rnd(&c->rng) % 4 == 0) {
    c->pause_at = c->recvd + rnd(&c->rng) % n;
    c->pause_ms = 50 + (uint32_t)(rnd(&c->rng) % (uint64_t)(max_pause_ms - 49));
  }
  if (c->steps_left == 1 && c->ending == E_RESET)
    c->limit = c->sent + rnd(&c->rng) % (n + 1); /* reset after this much */
  stall_clock(c, now);
  if (c->pause_at == c->recvd) /* a pause before the first byte back */
    start_pause(c, now);
}

/* The steps are over (or there were none): the ending. */
static void end_script(struct conn *c, uint64_t now) {
  switch (c->ending) {
  case E_CLOSE:
    st.scripts++;
    st.ending[E_CLOSE]++;
    close_conn(c, false);
    return;
  case E_HALF: /* with no steps: nothing to echo, just the FIN back */
    if (shutdown(c->fd, SHUT_WR) != 0) {
      fail(c, "shutdown: %s", strerror(errno));
      return;
    }
    c->state = C_HALF;
    stall_clock(c, now);
    return;
  case E_RESET:
    st.scripts++;
    st.ending[E_RESET]++;
    close_conn(c, true);
    return;
  case E_TIMEOUT:
    c->state = C_TIMEOUT;
    c->wake = c->last_write + MS(server_timeout_ms) + MS(15000);
    return;
  }
}

/* Write what the step allows. Returns false if the connection is gone. */
static bool flush(struct conn *c, uint64_t now) {
  while (c->sent < c->limit) {
    uint64_t len = c->limit - c->sent;
    ssize_t w;

    if (len > PAT_EXT)
      len = PAT_EXT;
    w = send(c->fd, pat + ((c->base + c->sent) & (PAT_LEN - 1)), len,
             MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return true;
      fail(c, "write: %s", strerror(errno));
      return false;
    }
    c->sent += (uint64_t)w;
    st.bytes_sent += (uint64_t)w;
    c->last_write = now;
    if (!c->paused)
      stall_clock(c, now);
    if ((uint64_t)w < len)
      return true;
  }
  if (c->state == C_STEP && c->sent == c->limit && c->limit < c->target) {
    /* the reset point of a reset ending: with our echo in flight */
    st.scripts++;
    st.ending[E_RESET]++;
    close_conn(c, true);
    return false;
  }
  if (c->state == C_STEP && c->sent == c->target && c->steps_left == 1 &&
      c->ending == E_HALF) {
    /* half-close now, the echo still on its way back */
    if (shutdown(c->fd, SHUT_WR) != 0) {
      fail(c, "shutdown: %s", strerror(errno));
      return false;
    }
    c->state = C_HALF;
  }
  return true;
}

/* A step whose echo is all back and verified. */
static void step_done(struct conn *c, uint64_t now) {
  uint64_t ms = now > c->t_step ? (now - c->t_step) / 1000000u : 0;
  int b = 0;

  while (b < LAT_BUCKETS - 1 && ((uint64_t)1 << b) <= ms)
    b++;
  st.lat[b]++; /* bucket b: under 2^b ms */
  if (ms > st.lat_max_ms)
    st.lat_max_ms = ms;
  st.steps++;
  c->steps_left--;
  if (c->steps_left > 0) {
    st.gaps++;
    c->state = C_GAP;
    c->wake = now + MS(rnd(&c->rng) % (uint64_t)(max_gap_ms + 1));
  } else {
    end_script(c, now);
  }
}

/* ---------------------------------------------------------------- events ---
 */

static bool verify(struct conn *c, const unsigned char *got, size_t n) {
  const unsigned char *want = pat + ((c->base + c->recvd) & (PAT_LEN - 1));

  if (c->recvd + n > c->sent) {
    fail(c, "the server echoed %" PRIu64 " bytes more than were written",
         c->recvd + n - c->sent);
    return false;
  }
  if (memcmp(got, want, n) != 0) {
    size_t j = 0;

    while (got[j] == want[j])
      j++;
    fail(c,
         "wrong byte at stream offset %" PRIu64 ": got 0x%02x, expected "
         "0x%02x",
         c->recvd + j, got[j], want[j]);
    return false;
  }
  c->recvd += n;
  st.bytes_verified += n;
  return true;
}

static void on_eof(struct conn *c, uint64_t now) {
  if (c->recvd != c->sent) {
    fail(c, "the server closed (FIN) with %" PRIu64 " bytes not echoed",
         c->sent - c->recvd);
    return;
  }
  if (c->draining) {
    st.drained++;
    close_conn(c, false);
    return;
  }
  switch (c->state) {
  case C_HALF:
    st.scripts++;
    st.ending[E_HALF]++;
    close_conn(c, false);
    return;
  case C_TIMEOUT: {
    uint64_t idle_ms = (now - c->last_write) / 1000000u;

    if (idle_ms + (uint64_t)early_slack_ms < (uint64_t)server_timeout_ms) {
      fail(c, "the server timed out after %" PRIu64 " ms idle (timeout %d)",
           idle_ms, server_timeout_ms);
      return;
    }
    if (idle_ms < st.timeout_min_ms)
      st.timeout_min_ms = idle_ms;
    if (idle_ms > st.timeout_max_ms)
      st.timeout_max_ms = idle_ms;
    st.scripts++;
    st.ending[E_TIMEOUT]++;
    close_conn(c, false);
    return;
  }
  default:
    fail(c, "the server closed (FIN) %" PRIu64 " ms after our last write",
         (now - c->last_write) / 1000000u);
  }
}

static void on_readable(struct conn *c, uint64_t now) {
  size_t want = sizeof(rbuf);
  ssize_t n;

  if (c->pause_at != UINT64_MAX && c->pause_at - c->recvd < want)
    want = (size_t)(c->pause_at - c->recvd);
  if (want == 0)
    want = 1; /* pause_at already reached: handled below, not here */
  n = recv(c->fd, rbuf, want, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR)
      return;
    fail(c, "read: %s", strerror(errno));
    return;
  }
  if (n == 0) {
    on_eof(c, now);
    return;
  }
  if (!verify(c, rbuf, (size_t)n))
    return;
  c->last_read = now;
  stall_clock(c, now);
  if (c->state == C_STEP && c->recvd == c->pause_at)
    start_pause(c, now);
  /* In C_HALF the FIN is next; a step goes on to the gap or the ending. */
  if (c->state == C_STEP && c->recvd == c->target && c->sent == c->target &&
      !c->paused)
    step_done(c, now);
}

static void on_connected(struct conn *c, uint64_t now) {
  int err = 0;
  socklen_t len = sizeof(err);

  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0) {
    fail(c, "connect: %s", strerror(err));
    return;
  }
  in_flight--;
  st.connected++;
  c->t_connected = now;
  if (now - c->t_open > MS(1000))
    st.slow_connects++;
  if (now - c->t_open > st.max_connect_ns)
    st.max_connect_ns = now - c->t_open;
  c->state = C_GAP;  /* out of C_CONNECTING: the script sets the real state */
  if (c->draining) { /* the run ended while we were connecting */
    c->state = C_HALF;
    shutdown(c->fd, SHUT_WR);
    stall_clock(c, now);
    return;
  }
  start_script(c, now);
}

static void on_event(uint64_t tag, uint32_t events, uint64_t now) {
  struct conn *c = &conns[(uint32_t)tag];

  if (c->state == C_FREE || c->gen != (uint32_t)(tag >> 32))
    return; /* for a descriptor closed earlier in this batch */
  if (c->state == C_CONNECTING) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
      return;
    on_connected(c, now);
    if (c->state == C_FREE)
      return;
    if (c->state == C_STEP && !flush(c, now))
      return;
    set_interest(c);
    return;
  }
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !c->paused) {
    on_readable(c, now);
    if (c->state == C_FREE)
      return;
  }
  if ((events & EPOLLOUT) && c->state == C_STEP) {
    if (!flush(c, now))
      return;
    if (c->state == C_STEP && c->recvd == c->target && c->sent == c->target &&
        !c->paused)
      step_done(c, now);
    if (c->state == C_FREE)
      return;
  } else if ((events & EPOLLERR) && c->paused) {
    int err = 0;
    socklen_t len = sizeof(err);

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    fail(c, "socket error while paused: %s", strerror(err));
    return;
  }
  set_interest(c);
}

/* A wake time came: a pause or gap is over, or a deadline passed. */
static void on_wake(struct conn *c, uint64_t now) {
  c->wake = 0;
  if (c->paused) { /* pauses end before the target: reading goes on */
    c->paused = false;
    stall_clock(c, now);
  } else if (c->state == C_GAP && !c->draining) {
    begin_step(c, now);
    if (!flush(c, now))
      return;
  } else if (c->state == C_TIMEOUT && !c->draining) {
    fail(c,
         "the server did not time out the connection (%" PRIu64
         " ms idle, timeout %d)",
         (now - c->last_write) / 1000000u, server_timeout_ms);
    return;
  } else {
    fail(c, "no progress for %d s", stall_s);
    return;
  }
  if (c->state != C_FREE)
    set_interest(c);
}

/* ------------------------------------------------------------- opening --- */

static void open_conn(int i, uint64_t now) {
  struct conn *c = &conns[i];
  struct epoll_event ev;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;

  if (fd < 0)
    die("socket");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (sources > 1) {
    /* Several source addresses: more 4-tuples than one address's ~28k
     * ephemeral ports, which TIME_WAIT from the closing scripts eats. */
    struct sockaddr_in src = {.sin_family = AF_INET};

    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)src_next);
    src_next = (src_next + 1) % sources;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one)) != 0)
      die("setsockopt(IP_BIND_ADDRESS_NO_PORT)");
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
      die("bind");
  }
  c->fd = fd;
  c->gen++;
  c->rng = mix(seed ^ ((uint64_t)i << 32) ^ c->gen);
  c->base = (uint32_t)rnd(&c->rng) & (PAT_LEN - 1);
  c->sent = c->recvd = c->target = c->limit = 0;
  c->pause_at = UINT64_MAX;
  c->paused = c->draining = false;
  c->steps_left = c->steps_total = 0;
  c->ending = E_CLOSE;
  c->state = C_CONNECTING;
  c->last_write = c->t_open = now;
  c->last_read = c->t_connected = 0;
  stall_clock(c, now);
  st.opened++;
  in_flight++;
  if (++open_now > peak_open)
    peak_open = open_now;
  c->registered = c->in_on = c->out_on = true;
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = (uint64_t)i | ((uint64_t)c->gen << 32);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
    die("epoll_ctl");
  if (connect(fd, (struct sockaddr *)&target_addr, sizeof(target_addr)) != 0 &&
      errno != EINPROGRESS) {
    if (errno == EADDRNOTAVAIL)
      fprintf(stderr, "soak-client: out of local ports; raise --sources\n");
    fail(c, "connect: %s", strerror(errno));
  }
}

/* Open queued slots while fewer than --concurrent are in their handshake,
 * so the server's backlog never overflows. */
static void pump(uint64_t now) {
  /* Ramp up over --ramp-seconds: 10k scripts started in the same instant
   * would run in lockstep, every first step at once. */
  uint64_t allowed = UINT64_MAX;

  if (ramp_s > 0 && now < t_start + MS(1000) * (uint64_t)ramp_s)
    allowed =
        (uint64_t)nconns * (now - t_start) / (MS(1000) * (uint64_t)ramp_s) + 1;
  while (!stopping && sq_len > 0 && in_flight < concurrent &&
         st.opened < allowed) {
    int i = startq[sq_head];

    sq_head = (sq_head + 1) % nconns;
    sq_len--;
    open_conn(i, now);
  }
}

/* ------------------------------------------------------------ the end --- */

/* Time is up: stop writing, shut our side down, read to the server's FIN. */
static void begin_drain(uint64_t now) {
  stopping = true;
  t_stop = now;
  drain_deadline = now + MS(1000) * (uint64_t)drain_s;
  sq_len = 0;
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];

    if (c->state == C_FREE)
      continue;
    c->draining = true;
    c->paused = false;
    c->wake = 0;
    if (c->state == C_CONNECTING)
      continue; /* shut down once connected */
    if (c->state != C_HALF && shutdown(c->fd, SHUT_WR) != 0) {
      fail(c, "shutdown: %s", strerror(errno));
      continue;
    }
    c->limit = c->target = c->sent; /* what is unwritten never will be */
    c->pause_at = UINT64_MAX;
    c->state = C_HALF;
    stall_clock(c, now);
    set_interest(c);
  }
}

/* The bound (ms) under which fraction q of the steps' echoes completed. */
static uint64_t lat_quantile(double q) {
  uint64_t total = 0, acc = 0;

  for (int b = 0; b < LAT_BUCKETS; b++)
    total += st.lat[b];
  for (int b = 0; b < LAT_BUCKETS; b++) {
    acc += st.lat[b];
    if (total > 0 && (double)acc >= q * (double)total)
      return (uint64_t)1 << b;
  }
  return 0;
}

static void print_summary(FILE *to) {
  double secs = (double)((t_stop ? t_stop : now_ns()) - t_start) / 1e9;

  fprintf(
      to,
      "soak-client: seed %" PRIu64 ", %d connections kept open for "
      "%.1f s (peak %d)\n"
      "  connections: %" PRIu64 " opened, %" PRIu64 " connected\n"
      "  scripts:     %" PRIu64 " done: %" PRIu64 " close, %" PRIu64
      " half-close, %" PRIu64 " reset, %" PRIu64 " timeout; %" PRIu64
      " drained at the end\n"
      "  echo steps:  %" PRIu64 " (%" PRIu64 " with a pause, %" PRIu64
      " gaps)\n"
      "  bytes:       %" PRIu64 " written, %" PRIu64 " echoed and verified\n"
      "  timeouts:    server closed idle connections after %" PRIu64
      "..%" PRIu64 " ms (its timeout: %d ms)\n"
      "  latency:     echo steps done within %" PRIu64 " ms (50%%), %" PRIu64
      " ms (99%%), %" PRIu64 " ms (all); pauses excluded\n"
      "  handshakes:  %" PRIu64 " took over 1 s; the longest %" PRIu64 " ms\n"
      "  errors:      %" PRIu64 "\n",
      seed, nconns, secs, peak_open, st.opened, st.connected, st.scripts,
      st.ending[E_CLOSE], st.ending[E_HALF], st.ending[E_RESET],
      st.ending[E_TIMEOUT], st.drained, st.steps, st.pauses, st.gaps,
      st.bytes_sent, st.bytes_verified,
      st.timeout_min_ms == UINT64_MAX ? 0 : st.timeout_min_ms,
      st.timeout_max_ms, server_timeout_ms, lat_quantile(0.5),
      lat_quantile(0.99), st.lat_max_ms, st.slow_connects,
      st.max_connect_ns / 1000000u, st.errors);
  fprintf(to,
          "result seed=%" PRIu64 " conns=%d seconds=%.1f peak_open=%d "
          "opened=%" PRIu64 " connected=%" PRIu64 " scripts=%" PRIu64
          " close=%" PRIu64 " half_close=%" PRIu64 " reset=%" PRIu64
          " timeout=%" PRIu64 " drained=%" PRIu64 " steps=%" PRIu64
          " pauses=%" PRIu64 " bytes_sent=%" PRIu64 " bytes_verified=%" PRIu64
          " step_p99_ms=%" PRIu64 " step_max_ms=%" PRIu64 " errors=%" PRIu64
          "\n",
          seed, nconns, secs, peak_open, st.opened, st.connected, st.scripts,
          st.ending[E_CLOSE], st.ending[E_HALF], st.ending[E_RESET],
          st.ending[E_TIMEOUT], st.drained, st.steps, st.pauses, st.bytes_sent,
          st.bytes_verified, lat_quantile(0.99), st.lat_max_ms, st.errors);
  {
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    fprintf(to, "soak-client: cpu %.2f s user, %.2f s system\n",
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
  }
  fflush(to);
}

/* ------------------------------------------------------------------ main ---
 */

static void on_signal(int sig) {
  (void)sig;
  got_signal = 1;
}

static void usage(int status) {
  fprintf(status == 0 ? stdout : stderr,
          "usage: soak-client --port P [-c N] [--seconds S] [--seed N]\n"
          "         [--server-timeout MS] [--max-size B] [--max-pause-ms MS]\n"
          "         [--max-gap-ms MS] [--early-slack-ms MS] "
          "[--stall-seconds S]\n"
          "         [--drain-seconds S] [--sources N] [--concurrent N] "
          "[--max-errors N]\n");
  exit(status);
}

static long num(int argc, char **argv, int *i, long min, long max) {
  char *end;
  long v;

  if (++*i >= argc)
    usage(64);
  errno = 0;
  v = strtol(argv[*i], &end, 0);
  if (errno != 0 || *argv[*i] == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "soak-client: bad value for %s: %s\n", argv[*i - 1],
            argv[*i]);
    exit(64);
  }
  return v;
}

static void parse_args(int argc, char **argv) {
  bool seeded = false;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];

    if (strcmp(a, "--port") == 0)
      port = (int)num(argc, argv, &i, 1, 65535);
    else if (strcmp(a, "-c") == 0)
      nconns = (int)num(argc, argv, &i, 1, 1000000);
    else if (strcmp(a, "--seconds") == 0)
      seconds = (double)num(argc, argv, &i, 1, 86400);
    else if (strcmp(a, "--seed") == 0)
      seed = (uint64_t)num(argc, argv, &i, 0, INT64_MAX), seeded = true;
    else if (strcmp(a, "--server-timeout") == 0)
      server_timeout_ms = (int)num(argc, argv, &i, 100, 600000);
    else if (strcmp(a, "--max-size") == 0)
      max_size = (int)num(argc, argv, &i, 1, PAT_EXT);
    else if (strcmp(a, "--max-pause-ms") == 0)
      max_pause_ms = (int)num(argc, argv, &i, 50, 600000);
    else if (strcmp(a, "--max-gap-ms") == 0)
      max_gap_ms = (int)num(argc, argv, &i, 0, 600000);
    else if (strcmp(a, "--early-slack-ms") == 0)
      early_slack_ms = (int)num(argc, argv, &i, 0, 600000);
    else if (strcmp(a, "--stall-seconds") == 0)
      stall_s = (int)num(argc, argv, &i, 1, 86400);
    else if (strcmp(a, "--drain-seconds") == 0)
      drain_s = (int)num(argc, argv, &i, 1, 86400);
    else if (strcmp(a, "--sources") == 0)
      sources = (int)num(argc, argv, &i, 1, 254);
    else if (strcmp(a, "--concurrent") == 0)
      concurrent = (int)num(argc, argv, &i, 1, 1000000);
    else if (strcmp(a, "--ramp-seconds") == 0)
      ramp_s = (int)num(argc, argv, &i, 0, 3600);
    else if (strcmp(a, "--max-steps") == 0)
      max_steps = (int)num(argc, argv, &i, 0, 255);
    else if (strcmp(a, "--max-errors") == 0)
      max_errors = (int)num(argc, argv, &i, 1, 1000000);
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
      usage(0);
    else
      usage(64);
  }
  if (port == 0)
    usage(64);
  /* Gaps up to 3/5 of the server's timeout and pauses up to 3/10: a
   * connection is touched every ~timeout/3 on average (what 10 000 of them
   * cost must fit two shared cores), and a loaded machine still has 2/5 of
   * the timeout as margin before the server rightly times out a
   * connection this client counts as busy. */
  if (max_gap_ms < 0)
    max_gap_ms = server_timeout_ms * 3 / 5;
  if (max_pause_ms < 0)
    max_pause_ms =
        server_timeout_ms * 3 / 10 > 50 ? server_timeout_ms * 3 / 10 : 50;
  /* Pauses and gaps must end well before the server's timeout, or it would
   * rightly close connections the script expects to live. */
  if (max_pause_ms + early_slack_ms >= server_timeout_ms ||
      max_gap_ms + early_slack_ms >= server_timeout_ms) {
    fprintf(stderr, "soak-client: --max-pause-ms and --max-gap-ms must be "
                    "below --server-timeout less --early-slack-ms\n");
    exit(64);
  }
  if (!seeded)
    seed = mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20)) >> 1;
}

static void raise_nofile(void) {
  struct rlimit rl;
  rlim_t need = (rlim_t)nconns + 64;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("getrlimit");
  if (rl.rlim_max < need) {
    fprintf(stderr,
            "soak-client: %d connections need %lu descriptors; the "
            "hard limit is %lu (ulimit -Hn)\n",
            nconns, (unsigned long)need, (unsigned long)rl.rlim_max);
    exit(2);
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("setrlimit");
}

int main(int argc, char **argv) {
  struct epoll_event evs[1024];
  uint64_t now, next_scan, next_report, run_end;
  struct sigaction sa = {.sa_handler = on_signal};

  parse_args(argc, argv);
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  fill_pattern(seed);
  printf("soak-client: seed %" PRIu64 ", %d connections, %.0f s, port %d\n",
         seed, nconns, seconds, port);
  fflush(stdout);

  target_addr.sin_family = AF_INET;
  target_addr.sin_port = htons((uint16_t)port);
  target_addr.sin_addr.s_addr = htonl(0x7f000001u);
  conns = calloc((size_t)nconns, sizeof(*conns));
  startq = calloc((size_t)nconns, sizeof(*startq));
  if (conns == NULL || startq == NULL)
    die("calloc");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = -1;
    queue_start(i);
  }

  now = t_start = now_ns();
  run_end = t_start + (uint64_t)(seconds * 1e9);
  next_scan = now + MS(10);
  next_report = now + MS(5000);
  pump(now);
  for (;;) {
    int n = epoll_wait(epfd, evs, 1024, 10);

    if (n < 0 && errno != EINTR)
      die("epoll_wait");
    now = now_ns();
    for (int k = 0; k < n; k++)
      on_event(evs[k].data.u64, evs[k].events, now);
    if (now >= next_scan) {
      next_scan = now + MS(10);
      for (int i = 0; i < nconns; i++)
        if (conns[i].wake != 0 && conns[i].wake <= now &&
            conns[i].state != C_FREE)
          on_wake(&conns[i], now);
    }
    if (!stopping && (now >= run_end || got_signal))
      begin_drain(now);
    if (stopping && open_now == 0)
      break;
    if (stopping && now > drain_deadline) {
      for (int i = 0; i < nconns; i++)
        if (conns[i].state != C_FREE)
          fail(&conns[i], "still open %d s after the end of the run", drain_s);
      break;
    }
    pump(now);
    if (now >= next_report) {
      next_report = now + MS(5000);
      fprintf(stderr,
              "soak-client: t=%.0fs open=%d handshaking=%d opened=%" PRIu64
              " scripts=%" PRIu64 " verified=%.1f MB step_max=%" PRIu64
              "ms errors=%" PRIu64 "\n",
              (double)(now - t_start) / 1e9, open_now, in_flight, st.opened,
              st.scripts, (double)st.bytes_verified / 1e6, st.lat_max_ms,
              st.errors);
    }
  }
  print_summary(stdout);
  return st.errors == 0 ? 0 : 1;
}
