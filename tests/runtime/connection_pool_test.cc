#include "transport/connection_pool.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TTransportException.h>

#include "Echo.h"
#include "support/bad_server.h"
#include "support/eventually.h"
#include "support/ports.h"
#include "support/test_server.h"
#include "testing/fake_clock.h"

namespace fulcrum::internal {
namespace {

using apache::thrift::transport::TTransportException;
using fulcrum::test::EchoClient;
using fulcrum::testing::BadServer;
using fulcrum::testing::BindLoopback;
using fulcrum::testing::Eventually;
using fulcrum::testing::FakeClock;
using fulcrum::testing::TestServer;
using std::chrono::milliseconds;
using std::chrono::seconds;

Endpoint Local(uint16_t port) {
  Endpoint e;
  e.host = "127.0.0.1";
  e.port = port;
  return e;
}

class ConnectionPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = TestServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }
  TimePoint Later() const { return clock_.Now() + seconds(10); }

  FakeClock clock_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(ConnectionPoolTest, ReusesAnIdleConnection) {
  ConnectionPool pool(server_->endpoint(), {}, clock_);
  PooledConnection* first = nullptr;
  {
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok()) << lease.status();
    first = &lease->connection();
    EXPECT_EQ(lease->connection().As<EchoClient>().increment(1), 1);
    EXPECT_EQ(pool.open_connections(), 1);
    EXPECT_EQ(pool.idle_connections(), 0);
  }
  EXPECT_EQ(pool.idle_connections(), 1);
  auto lease = pool.Acquire(Later());
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(&lease->connection(), first);  // the same object, still open: not a new socket
  EXPECT_EQ(lease->connection().As<EchoClient>().increment(1), 2);
  EXPECT_EQ(pool.open_connections(), 1);
}

TEST_F(ConnectionPoolTest, AThreadGetsBackTheConnectionItParkedThenTheMostRecentIdleOne) {
  ConnectionPool pool(server_->endpoint(), {}, clock_);
  auto a = pool.Acquire(Later());
  auto b = pool.Acquire(Later());
  auto c = pool.Acquire(Later());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  PooledConnection* parked = &a->connection();
  PooledConnection* listed_last = &c->connection();
  a = ConnectionPool::Lease();  // parks in this thread's slot
  b = ConnectionPool::Lease();  // the slot is taken: to the idle list
  c = ConnectionPool::Lease();  // the idle list, most recent
  auto first = pool.Acquire(Later());
  auto second = pool.Acquire(Later());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(&first->connection(), parked);
  EXPECT_EQ(&second->connection(), listed_last);
}

TEST_F(ConnectionPoolTest, ParkedConnectionsServeOtherThreadsWhenTheLimitIsReached) {
  PoolOptions options;
  options.max_connections = 1;
  ConnectionPool pool(server_->endpoint(), options, clock_);
  {
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok());
  }  // parked in this thread's slot
  std::thread other([&] {
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_EQ(lease->connection().As<EchoClient>().increment(1), 1);
  });
  other.join();
  EXPECT_EQ(pool.open_connections(), 1);
}

TEST_F(ConnectionPoolTest, AtMostMaxConnectionsThenWaitsUntilTheDeadline) {
  PoolOptions options;
  options.max_connections = 2;
  ConnectionPool pool(server_->endpoint(), options);  // real clock: the wait is real
  auto a = pool.Acquire(Clock::Real().Now() + seconds(10));
  auto b = pool.Acquire(Clock::Real().Now() + seconds(10));
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = pool.Acquire(Clock::Real().Now() + milliseconds(20));
  EXPECT_EQ(c.status().code(), StatusCode::kDeadlineExceeded) << c.status();
  EXPECT_EQ(pool.open_connections(), 2);
}

TEST_F(ConnectionPoolTest, AWaiterGetsTheConnectionReleasedBeforeItsDeadline) {
  PoolOptions options;
  options.max_connections = 1;
  ConnectionPool pool(server_->endpoint(), options);
  auto held = pool.Acquire(Clock::Real().Now() + seconds(10));
  ASSERT_TRUE(held.ok());
  PooledConnection* conn = &held->connection();
  auto waiter = std::async(std::launch::async, [&] {
    auto lease = pool.Acquire(Clock::Real().Now() + seconds(30));
    return lease.ok() ? &lease->connection() : nullptr;
  });
  held = ConnectionPool::Lease();  // release
  EXPECT_EQ(waiter.get(), conn);
  EXPECT_EQ(pool.open_connections(), 1);
}

TEST_F(ConnectionPoolTest, ABrokenConnectionIsClosedAndNeverReused) {
  ConnectionPool pool(server_->endpoint(), {}, clock_);
  {
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok());
    lease->connection().MarkBroken();
    EXPECT_TRUE(lease->connection().broken());
  }
  EXPECT_EQ(pool.open_connections(), 0);
  EXPECT_EQ(pool.idle_connections(), 0);
  auto lease = pool.Acquire(Later());
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE(lease->connection().broken());
  EXPECT_EQ(pool.open_connections(), 1);
}

TEST_F(ConnectionPoolTest, AConnectionOwingAReplyIsClosedNotReused) {
  // A request sent and its reply never read: the next call on that connection would read the
  // old reply as its own. Oneway requests owe nothing and keep the connection.
  for (const Protocol protocol : {Protocol::kBinary, Protocol::kCompact}) {
    SCOPED_TRACE(protocol == Protocol::kBinary ? "binary" : "compact");
    auto s = TestServer::Start({.protocol = protocol});
    ASSERT_TRUE(s.ok());
    ConnectionPool pool((*s)->endpoint(), {.protocol = protocol}, clock_);
    {
      auto lease = pool.Acquire(Later());
      ASSERT_TRUE(lease.ok());
      auto& client = lease->connection().As<EchoClient>();
      client.send_echo("first");
      EXPECT_TRUE(lease->connection().AwaitingReply());
    }
    EXPECT_EQ(pool.open_connections(), 0);
    {
      auto lease = pool.Acquire(Later());
      ASSERT_TRUE(lease.ok());
      auto& client = lease->connection().As<EchoClient>();
      std::string out;
      client.echo(out, "second");
      EXPECT_EQ(out, "second");
      client.send_notify("n");
      EXPECT_FALSE(lease->connection().AwaitingReply());
    }
    EXPECT_EQ(pool.open_connections(), 1);
    EXPECT_EQ(pool.idle_connections(), 1);
  }
}

TEST_F(ConnectionPoolTest, AnAbandonedCallsConnectionServesAgainOnlyAfterItsReplyIsDropped) {
  // A hedge race's loser: its request left and its reply is owed. The pool keeps the
  // connection aside, drops the reply once all of it has come, and only then reuses the
  // connection: the next call reads its own answer, and no reconnect was needed.
  for (const Protocol protocol : {Protocol::kBinary, Protocol::kCompact}) {
    SCOPED_TRACE(protocol == Protocol::kBinary ? "binary" : "compact");
    auto s = TestServer::Start({.protocol = protocol, .echo_delay = milliseconds(50)});
    ASSERT_TRUE(s.ok());
    ConnectionPool pool((*s)->endpoint(), {.protocol = protocol}, clock_);
    PooledConnection* abandoned = nullptr;
    {
      auto lease = pool.Acquire(Later());
      ASSERT_TRUE(lease.ok());
      abandoned = &lease->connection();
      lease->connection().As<EchoClient>().send_echo(std::string(10000, 'x'));
      lease->connection().AllowDrain();
    }
    EXPECT_EQ(pool.open_connections(), 1);
    EXPECT_EQ(pool.draining_connections(), 1);
    EXPECT_EQ(pool.idle_connections(), 0);
    {
      // The reply takes 50 ms: a caller meanwhile gets a new connection.
      auto lease = pool.Acquire(Later());
      ASSERT_TRUE(lease.ok());
      EXPECT_NE(&lease->connection(), abandoned);
      lease->connection().MarkBroken();  // out of the way
    }
    // Once the reply is there, the connection serves again, clean.
    ASSERT_TRUE(Eventually([&] {
      pool.CloseIdle();  // the housekeeping's look at the draining connections
      return pool.draining_connections() == 0;
    }));
    EXPECT_EQ(pool.idle_connections(), 1);
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(&lease->connection(), abandoned);
    EXPECT_FALSE(lease->connection().AwaitingReply());
    std::string out;
    lease->connection().As<EchoClient>().echo(out, "second");
    EXPECT_EQ(out, "second");
  }
}

TEST_F(ConnectionPoolTest, AnAbandonedConnectionWhoseReplyNeverComesIsClosed) {
  BadServer silent(BadServer::Mode::kHang);
  ASSERT_TRUE(silent.Start().ok());
  ConnectionPool pool(Local(silent.port()), {.idle_timeout = seconds(5)}, clock_);
  {
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok());
    lease->connection().As<EchoClient>().send_echo("x");
    lease->connection().AllowDrain();
  }
  pool.CloseIdle();
  EXPECT_EQ(pool.draining_connections(), 1);
  clock_.Advance(seconds(6));
  pool.CloseIdle();
  EXPECT_EQ(pool.draining_connections(), 0);
  EXPECT_EQ(pool.open_connections(), 0);
}

TEST_F(ConnectionPoolTest, ClosesConnectionsIdleLongerThanIdleTimeout) {
  PoolOptions options;
  options.idle_timeout = seconds(30);
  ConnectionPool pool(server_->endpoint(), options, clock_);
  auto old_lease = pool.Acquire(Later());
  auto new_lease = pool.Acquire(Later());
  ASSERT_TRUE(old_lease.ok() && new_lease.ok());
  old_lease = ConnectionPool::Lease();  // idle since t0
  clock_.Advance(seconds(20));
  new_lease = ConnectionPool::Lease();  // idle since t0 + 20 s
  clock_.Advance(seconds(11));          // t0 + 31 s
  pool.CloseIdle();
  EXPECT_EQ(pool.idle_connections(), 1);
  EXPECT_EQ(pool.open_connections(), 1);
  clock_.Advance(seconds(20));
  pool.CloseIdle();
  EXPECT_EQ(pool.idle_connections(), 0);
  EXPECT_EQ(pool.open_connections(), 0);
}

TEST_F(ConnectionPoolTest, KeepsAtMostMaxIdle) {
  PoolOptions options;
  options.max_idle = 1;
  ConnectionPool pool(server_->endpoint(), options, clock_);
  auto a = pool.Acquire(Later());
  auto b = pool.Acquire(Later());
  ASSERT_TRUE(a.ok() && b.ok());
  a = ConnectionPool::Lease();  // parked in this thread's slot
  b = ConnectionPool::Lease();  // the idle list
  // The idle list holds at most max_idle at once; together with the per-thread slots the
  // bound holds from the next housekeeping pass on.
  EXPECT_EQ(pool.idle_connections(), 2);
  pool.CloseIdle();
  EXPECT_EQ(pool.idle_connections(), 1);
  EXPECT_EQ(pool.open_connections(), 1);
}

TEST_F(ConnectionPoolTest, HousekeepingLeavesEachThreadItsOwnConnection) {
  ConnectionPool pool(server_->endpoint(), {}, clock_);
  PooledConnection* mine = nullptr;
  {
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok());
    mine = &lease->connection();
  }  // parked in this thread's slot
  clock_.Advance(seconds(1));
  std::thread([&] {
    auto lease = pool.Acquire(Later());  // another thread, another slot: a second connection
    ASSERT_TRUE(lease.ok());
    EXPECT_NE(&lease->connection(), mine);
  }).join();  // its connection stays parked in its slot, used more recently than ours
  pool.CloseIdle();
  EXPECT_EQ(pool.idle_connections(), 2);
  EXPECT_EQ(pool.open_connections(), 2);
  // Housekeeping put each parked connection back where it was: not the most recently used
  // one from a shared list.
  auto lease = pool.Acquire(Later());
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(&lease->connection(), mine);
}

// A thread's slot goes to the next thread when it exits: threads started one after another
// (a thread per task) find the connection the last one parked, instead of each opening one
// into a slot of its own until every slot holds an idle connection.
TEST_F(ConnectionPoolTest, ThreadsThatComeAndGoShareOneConnection) {
  ConnectionPool pool(server_->endpoint(), {}, clock_);
  for (int i = 0; i < 40; ++i) {
    std::thread([&] {
      auto lease = pool.Acquire(Later());
      ASSERT_TRUE(lease.ok()) << lease.status();
      EXPECT_EQ(lease->connection().As<EchoClient>().increment(1), i + 1);
    }).join();
  }
  EXPECT_EQ(pool.open_connections(), 1);
}

// Housekeeping runs on the channel's thread while callers come and go. A caller that finds its
// slot empty because CloseIdle is holding the connection for a moment must get it back, not
// open a second one (which then sits idle for idle_timeout).
TEST_F(ConnectionPoolTest, ACallerRacingHousekeepingKeepsItsOneConnection) {
  ConnectionPool pool(server_->endpoint(), {}, clock_);
  std::atomic<bool> done{false};
  std::thread housekeeping([&] {
    while (!done.load()) pool.CloseIdle();
  });
  int iterations = 0;
  for (; iterations < 200000 && pool.open_connections() <= 1; ++iterations) {
    auto lease = pool.Acquire(Later());
    ASSERT_TRUE(lease.ok()) << lease.status();
  }
  done.store(true);
  housekeeping.join();
  EXPECT_EQ(pool.open_connections(), 1) << "after " << iterations << " calls";
}

// Two callers share one connection while housekeeping runs: no caller may wait for a
// connection that is parked and free. Such a lost wake-up shows as an Acquire that returns
// only when its wait times out, long after the connection came back; the 5 s deadline is a
// thousand times what a hand-over takes, so only a lost wake-up can reach it.
TEST_F(ConnectionPoolTest, NoWaiterMissesAConnectionReturnedOrParkedMeanwhile) {
  PoolOptions options;
  options.max_connections = 1;
  ConnectionPool pool(server_->endpoint(), options);  // real clock: the waits are real
  std::atomic<bool> done{false};
  std::atomic<int> late{0};
  std::thread housekeeping([&] {
    while (!done.load()) {
      pool.CloseIdle();
      std::this_thread::yield();
    }
  });
  auto caller = [&] {
    for (int i = 0; i < 20000 && late.load() == 0; ++i) {
      const TimePoint deadline = Clock::Real().Now() + seconds(5);
      auto lease = pool.Acquire(deadline);
      if (!lease.ok() || Clock::Real().Now() >= deadline) {
        ++late;
        ADD_FAILURE() << "call " << i << ": "
                      << (lease.ok() ? "served at its deadline" : lease.status().ToString());
      }
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  done.store(true);
  housekeeping.join();
  EXPECT_EQ(late.load(), 0);
  EXPECT_EQ(pool.open_connections(), 1);
}

TEST_F(ConnectionPoolTest, WatchdogCutsACallAtItsDeadlineOnTheConnectionsClock) {
  BadServer hang(BadServer::Mode::kHang);
  ASSERT_TRUE(hang.Start().ok());
  ConnectionPool pool(Local(hang.port()), {}, clock_);
  auto lease = pool.Acquire(Later());
  ASSERT_TRUE(lease.ok());
  PooledConnection& conn = lease->connection();
  conn.BeginCall(clock_.Now() + seconds(1), clock_);
  // Real time passes, the fake clock does not: nothing may cut the call until it moves.
  const auto start = std::chrono::steady_clock::now();
  auto advance = std::async(std::launch::async, [this] {
    std::this_thread::sleep_for(milliseconds(100));
    clock_.Advance(seconds(2));
  });
  std::string out;
  EXPECT_THROW(conn.As<EchoClient>().whoami(out), TTransportException);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(100));
  advance.get();
  EXPECT_TRUE(conn.EndCall()) << "the watchdog cut the call";
  EXPECT_TRUE(conn.broken()) << "a cut connection is never reused";
}

TEST_F(ConnectionPoolTest, ACallThatEndsInTimeIsNeverCut) {
  ConnectionPool pool(server_->endpoint(), {}, clock_);
  auto lease = pool.Acquire(Later());
  ASSERT_TRUE(lease.ok());
  PooledConnection& conn = lease->connection();
  std::string out;
  conn.BeginCall(clock_.Now() + seconds(1), clock_);
  conn.As<EchoClient>().whoami(out);
  EXPECT_FALSE(conn.EndCall());
  // Long past that deadline, with the watchdog scanning, the idle connection stays whole.
  clock_.Advance(seconds(60));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(conn.broken());
  conn.BeginCall(clock_.Now() + seconds(1), clock_);
  EXPECT_NO_THROW(conn.As<EchoClient>().whoami(out));
  EXPECT_FALSE(conn.EndCall());
}

TEST(ConnectionPoolConnectTest, RefusedConnectIsATransportErrorNamingTheAddress) {
  // A bound socket that does not listen: its port refuses connections and stays ours.
  uint16_t port = 0;
  const int fd = BindLoopback(&port);
  ASSERT_GE(fd, 0);

  ConnectionPool pool(Local(port), {});
  auto lease = pool.Acquire(Clock::Real().Now() + seconds(10));
  ::close(fd);
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.status().code(), StatusCode::kTransport);
  EXPECT_NE(lease.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << lease.status();
  EXPECT_NE(lease.status().message().find("refused"), std::string::npos) << lease.status();
  EXPECT_EQ(pool.open_connections(), 0);
}

TEST(ConnectionPoolConnectTest, APassedDeadlineFailsWithoutConnecting) {
  BadServer server(BadServer::Mode::kHang);
  ASSERT_TRUE(server.Start().ok());
  FakeClock clock;
  ConnectionPool pool(Local(server.port()), {}, clock);
  auto lease = pool.Acquire(clock.Now() - milliseconds(1));
  EXPECT_EQ(lease.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server.accepted(), 0);
}

TEST(ConnectionPoolPeerTest, AConnectionTheServerClosedIsDroppedNotUsed) {
  BadServer server(BadServer::Mode::kCloseOnAccept);
  ASSERT_TRUE(server.Start().ok());
  FakeClock clock;
  PoolOptions options;
  options.recheck_after_idle = milliseconds(100);
  ConnectionPool pool(Local(server.port()), options, clock);
  {
    auto lease = pool.Acquire(clock.Now() + seconds(10));
    ASSERT_TRUE(lease.ok()) << lease.status();
    ASSERT_TRUE(Eventually([&] { return lease->connection().PeerClosed(); }));
  }
  ASSERT_EQ(pool.idle_connections(), 1);

  // Used again at once: not rechecked (the hot path makes no system call)...
  {
    auto lease = pool.Acquire(clock.Now() + seconds(10));
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(server.accepted(), 1);
  }
  // ...but idle for longer than recheck_after_idle, it is checked, found closed and replaced.
  clock.Advance(milliseconds(101));
  auto lease = pool.Acquire(clock.Now() + seconds(10));
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(Eventually([&] { return server.accepted() == 2; }));
  EXPECT_EQ(pool.open_connections(), 1);
}

TEST(ConnectionPoolPeerTest, UnsolicitedBytesMeanTheConnectionIsUseless) {
  BadServer server(BadServer::Mode::kGarbageBytes);
  ASSERT_TRUE(server.Start().ok());
  ConnectionPool pool(Local(server.port()), {});
  auto lease = pool.Acquire(Clock::Real().Now() + seconds(10));
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE(lease->connection().PeerClosed());
  // A call gets junk back: the caller marks the connection broken.
  EXPECT_THROW(lease->connection().As<EchoClient>().increment(1), TTransportException);
  lease->connection().MarkBroken();
  lease = ConnectionPool::Lease();
  EXPECT_EQ(pool.open_connections(), 0);
}

TEST(ConnectionPoolPeerTest, AGarbledReplyIsAProtocolErrorAndHalfAReplyATransportError) {
  BadServer garbage(BadServer::Mode::kGarbageFrame);
  BadServer half(BadServer::Mode::kHalfFrame);
  ASSERT_TRUE(garbage.Start().ok() && half.Start().ok());
  for (Protocol protocol : {Protocol::kBinary, Protocol::kCompact}) {
    PoolOptions options;
    options.protocol = protocol;
    ConnectionPool garbage_pool(Local(garbage.port()), options);
    auto lease = garbage_pool.Acquire(Clock::Real().Now() + seconds(10));
    ASSERT_TRUE(lease.ok());
    EXPECT_THROW(lease->connection().As<EchoClient>().increment(1),
                 apache::thrift::protocol::TProtocolException);
    lease->connection().MarkBroken();

    ConnectionPool half_pool(Local(half.port()), options);
    auto half_lease = half_pool.Acquire(Clock::Real().Now() + seconds(10));
    ASSERT_TRUE(half_lease.ok());
    try {
      half_lease->connection().As<EchoClient>().increment(1);
      ADD_FAILURE() << "half a frame was taken for a reply";
    } catch (const TTransportException& e) {
      EXPECT_EQ(e.getType(), TTransportException::END_OF_FILE) << e.what();
    }
    half_lease->connection().MarkBroken();
  }
  EXPECT_EQ(garbage.requests(), 2);
  EXPECT_EQ(half.requests(), 2);
}

TEST(ConnectionPoolPeerTest, TheDeadlineWatchCutsACallToAServerThatNeverAnswers) {
  BadServer server(BadServer::Mode::kHang);
  ASSERT_TRUE(server.Start().ok());
  ConnectionPool pool(Local(server.port()), {});
  auto lease = pool.Acquire(Clock::Real().Now() + seconds(10));
  ASSERT_TRUE(lease.ok());
  lease->connection().BeginCall(Clock::Real().Now() + milliseconds(50), Clock::Real());
  EXPECT_THROW(lease->connection().As<EchoClient>().increment(1), TTransportException);
  EXPECT_TRUE(lease->connection().EndCall());  // the watch cut it: that is why the read failed
  EXPECT_TRUE(lease->connection().broken());
}

TEST_F(ConnectionPoolTest, ShutdownClosesIdleFailsNewCallsAndClosesReturnedLeases) {
  PoolOptions options;
  options.max_connections = 2;
  ConnectionPool pool(server_->endpoint(), options);
  auto idle = pool.Acquire(Clock::Real().Now() + seconds(10));
  auto busy = pool.Acquire(Clock::Real().Now() + seconds(10));
  ASSERT_TRUE(idle.ok() && busy.ok());
  idle = ConnectionPool::Lease();
  auto second = pool.Acquire(Clock::Real().Now() + seconds(10));  // takes the idle one
  ASSERT_TRUE(second.ok());
  auto waiter = std::async(
      std::launch::async, [&] { return pool.Acquire(Clock::Real().Now() + seconds(30)).status(); });

  pool.Shutdown();
  EXPECT_EQ(waiter.get().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.Acquire(Clock::Real().Now() + seconds(10)).status().code(),
            StatusCode::kResourceExhausted);
  // A call in flight finishes normally; its connection is closed when returned.
  EXPECT_EQ(busy->connection().As<EchoClient>().increment(5), 5);
  busy = ConnectionPool::Lease();
  second = ConnectionPool::Lease();
  EXPECT_EQ(pool.open_connections(), 0);
  EXPECT_EQ(pool.idle_connections(), 0);
}

TEST_F(ConnectionPoolTest, CompactProtocol) {
  auto server = TestServer::Start({.id = "compact", .protocol = Protocol::kCompact});
  ASSERT_TRUE(server.ok());
  PoolOptions options;
  options.protocol = Protocol::kCompact;
  ConnectionPool pool(server.value()->endpoint(), options, clock_);
  auto lease = pool.Acquire(Later());
  ASSERT_TRUE(lease.ok());
  std::string out;
  lease->connection().As<EchoClient>().whoami(out);
  EXPECT_EQ(out, "compact");
}

}  // namespace
}  // namespace fulcrum::internal
