//===- CacheStressTest.cpp - The kernel cache under concurrent processes --===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Issue 13, "cache under load": 8 processes plan overlapping specs against
// one cache directory while some are killed (SIGKILL) mid-compile;
// afterwards every entry loads or is recompiled, no surviving process
// fails, and no partial file remains. Each process is
// fp-cache-stress-worker (the plan's codegen + cache path, no GPU needed),
// compiling with NVRTC when it is present, else with a fake 1 s compiler.
// A second test kills writers in the middle of writing a large entry.
// Everything is capped at 5 minutes.
//
//===----------------------------------------------------------------------===//
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <random>
#include <set>
#include <spawn.h>
#include <string>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char **environ;

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kCap = std::chrono::minutes(5);

class TempDir {
public:
  TempDir() {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/fp-cache-stress-XXXXXX";
    path_ = mkdtemp(&pattern[0]) ? pattern : "";
  }
  ~TempDir() {
    for (const std::string &name : list())
      unlink((path_ + "/" + name).c_str());
    rmdir(path_.c_str());
  }
  const std::string &path() const { return path_; }
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    if (DIR *d = opendir(path_.c_str())) {
      while (dirent *e = readdir(d))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, ".."))
          names.push_back(e->d_name);
      closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

private:
  std::string path_;
};

/// A running fp-cache-stress-worker and the lines it printed so far.
struct Worker {
  pid_t pid = -1;
  int out = -1;
  std::string buffer;
  std::vector<std::string> lines;
  bool exited = false;
  int status = 0;
  bool killed = false; ///< we sent SIGKILL
};

/// The worker: FP_STRESS_WORKER, else next to this test binary (a build
/// tree carried to another path, e.g. a GPU machine).
std::string workerPath() {
  if (access(FP_STRESS_WORKER, X_OK) == 0)
    return FP_STRESS_WORKER;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0)
    return FP_STRESS_WORKER;
  std::string dir(self, size_t(n));
  return dir.substr(0, dir.rfind('/') + 1) + "fp-cache-stress-worker";
}

Worker spawn(const std::vector<std::string> &args) {
  Worker w;
  int fds[2];
  if (pipe(fds) != 0)
    return w;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char *> argv;
  std::string exe = workerPath();
  argv.push_back(&exe[0]);
  std::vector<std::string> copy = args;
  for (std::string &a : copy)
    argv.push_back(&a[0]);
  argv.push_back(nullptr);
  if (posix_spawn(&w.pid, exe.c_str(), &actions, nullptr, argv.data(),
                  environ) != 0)
    w.pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  w.out = fds[0];
  fcntl(w.out, F_SETFL, O_NONBLOCK);
  return w;
}

/// Reads what is available; returns the complete lines added.
std::vector<std::string> drain(Worker &w) {
  std::vector<std::string> added;
  char buf[4096];
  for (;;) {
    ssize_t n = read(w.out, buf, sizeof(buf));
    if (n <= 0)
      break;
    w.buffer.append(buf, size_t(n));
  }
  size_t nl;
  while ((nl = w.buffer.find('\n')) != std::string::npos) {
    added.push_back(w.buffer.substr(0, nl));
    w.lines.push_back(added.back());
    w.buffer.erase(0, nl + 1);
  }
  return added;
}

void reap(Worker &w, bool block) {
  if (w.exited || w.pid <= 0)
    return;
  int status = 0;
  pid_t r = waitpid(w.pid, &status, block ? 0 : WNOHANG);
  if (r == w.pid) {
    w.exited = true;
    w.status = status;
    drain(w);
    close(w.out);
  }
}

std::string describe(const Worker &w) {
  std::string s = "pid " + std::to_string(w.pid) + ": ";
  if (WIFEXITED(w.status))
    s += "exit " + std::to_string(WEXITSTATUS(w.status));
  else if (WIFSIGNALED(w.status))
    s += "signal " + std::to_string(WTERMSIG(w.status));
  for (const std::string &line : w.lines)
    s += "\n    " + line;
  return s;
}

/// Runs `workers` until all exit; `onLine(index, line)` may kill one.
/// Returns false past the deadline (everything is killed then).
template <typename OnLine>
bool runAll(std::vector<Worker> &workers, Clock::time_point deadline,
            OnLine &&onLine) {
  for (;;) {
    bool running = false;
    std::vector<pollfd> fds;
    for (Worker &w : workers) {
      reap(w, false);
      if (!w.exited) {
        running = true;
        fds.push_back({w.out, POLLIN, 0});
      }
    }
    if (!running)
      return true;
    if (Clock::now() > deadline) {
      for (Worker &w : workers)
        if (!w.exited) {
          kill(w.pid, SIGKILL);
          reap(w, true);
        }
      return false;
    }
    poll(fds.data(), fds.size(), 20);
    for (size_t i = 0; i < workers.size(); ++i)
      if (!workers[i].exited)
        for (const std::string &line : drain(workers[i]))
          onLine(i, line);
  }
}

/// The compiler the workers use: nvrtc when a probe worker finds it.
std::string chooseCompiler(const std::string &dir) {
  Worker probe = spawn({dir, "nvrtc", "verify", "0"});
  reap(probe, true);
  if (WIFEXITED(probe.status) && WEXITSTATUS(probe.status) == 0)
    return "nvrtc";
  return "fake";
}

/// Runs a verify worker: spec -> "hit" / "miss" / "corrupt", plus keys.
std::map<int, std::string> verify(const std::string &dir,
                                  const std::string &compiler,
                                  std::set<std::string> *keys,
                                  const std::vector<int> &specs) {
  std::vector<std::string> args = {dir, compiler, "verify"};
  for (int s : specs)
    args.push_back(std::to_string(s));
  std::vector<Worker> one = {spawn(args)};
  runAll(one, Clock::now() + std::chrono::minutes(2),
         [](size_t, const std::string &) {});
  std::map<int, std::string> result;
  for (const std::string &line : one[0].lines) {
    char word[16] = {}, key[80] = {};
    int spec = -1;
    if (std::sscanf(line.c_str(), "%15s %d %79s", word, &spec, key) == 3) {
      result[spec] = word;
      if (keys)
        keys->insert(key);
    }
  }
  EXPECT_TRUE(WIFEXITED(one[0].status) && WEXITSTATUS(one[0].status) == 0)
      << describe(one[0]);
  return result;
}

std::vector<std::string> withPrefix(const std::vector<std::string> &names,
                                    const std::string &prefix) {
  std::vector<std::string> out;
  for (const std::string &n : names)
    if (n.rfind(prefix, 0) == 0)
      out.push_back(n);
  return out;
}

// 8 processes, each planning two of four overlapping specs (every spec is
// wanted by 4 processes); 3 are killed while compiling. The other 5 succeed,
// no entry is ever seen partial ("corrupt"), a later process gets every spec
// (loaded or recompiled), and the directory ends with exactly one complete
// entry per spec and no temp file.
TEST(CacheStressTest, ProcessesKilledMidCompile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto start = Clock::now();
  std::string compiler = chooseCompiler(dir.path());
  std::printf("[          ] compiler: %s\n", compiler.c_str());

  const std::set<size_t> victims = {1, 4, 6};
  std::vector<Worker> workers;
  // Every compile function first waits 600 ms (then compiles for real), so a
  // kill 0-300 ms after "compile <spec>" always lands mid-compile.
  for (int i = 0; i < 8; ++i)
    workers.push_back(
        spawn({dir.path(), compiler + ":600", "plan", std::to_string(i % 4),
               std::to_string((i + 1) % 4)}));
  for (const Worker &w : workers)
    ASSERT_GT(w.pid, 0) << "cannot start " << workerPath();

  // Kill each victim 0-300 ms into its first (victim 4: second) compile:
  // before anything is written.
  std::mt19937 rng(1234);
  std::map<size_t, int> compilesSeen;
  bool inTime =
      runAll(workers, start + kCap, [&](size_t i, const std::string &line) {
        if (!victims.count(i) || line.rfind("compile", 0) != 0)
          return;
        if (++compilesSeen[i] != (i == 4 ? 2 : 1))
          return;
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
        kill(workers[i].pid, SIGKILL);
        workers[i].killed = true;
      });
  ASSERT_TRUE(inTime) << "round 1 ran past 5 minutes";

  int survivors = 0;
  for (size_t i = 0; i < workers.size(); ++i) {
    const Worker &w = workers[i];
    if (w.killed && WIFSIGNALED(w.status)) {
      EXPECT_EQ(WTERMSIG(w.status), SIGKILL) << describe(w);
      continue;
    }
    // Not a victim (or the victim finished first): it must have succeeded.
    EXPECT_TRUE(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0)
        << "worker " << i << " failed: " << describe(w);
    EXPECT_EQ(withPrefix(w.lines, "done").size(), 2u) << describe(w);
    ++survivors;
  }
  EXPECT_GE(survivors, 5);

  // No partial entry is visible: every spec is a hit or absent.
  for (auto [spec, what] : verify(dir.path(), compiler, nullptr, {0, 1, 2, 3}))
    EXPECT_NE(what, "corrupt") << "spec " << spec;

  // A later process gets every spec: loaded or recompiled.
  std::vector<Worker> later = {
      spawn({dir.path(), compiler, "plan", "0", "1", "2", "3"})};
  ASSERT_TRUE(runAll(later, start + kCap, [](size_t, const std::string &) {}))
      << "round 2 ran past 5 minutes";
  EXPECT_TRUE(WIFEXITED(later[0].status) && WEXITSTATUS(later[0].status) == 0)
      << describe(later[0]);
  EXPECT_EQ(withPrefix(later[0].lines, "done").size(), 4u)
      << describe(later[0]);

  // Afterwards: four complete entries, nothing else.
  std::set<std::string> keys;
  auto final = verify(dir.path(), compiler, &keys, {0, 1, 2, 3});
  for (int spec = 0; spec < 4; ++spec)
    EXPECT_EQ(final[spec], "hit") << "spec " << spec;
  std::vector<std::string> expected;
  for (const std::string &key : keys)
    expected.push_back(key + ".fpk");
  EXPECT_EQ(dir.list(), expected) << "partial or stray files remain";
  std::printf("[          ] %d survivors of 8, %zu entries, %.1f s\n",
              survivors, keys.size(),
              std::chrono::duration<double>(Clock::now() - start).count());
}

// Writers killed while writing a 96 MiB entry: readers never see a partial
// entry (the next process gets a clean miss and rewrites it). The killed
// writer's temp file is the only leftover; it is reported, see
// docs/bad-inputs.md ("kernel cache").
TEST(CacheStressTest, ProcessesKilledMidWrite) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto start = Clock::now();
  int killedMidWrite = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<std::string> before = withPrefix(dir.list(), ".tmp-");
    std::vector<Worker> one = {spawn({dir.path(), "large", "plan", "0"})};
    // Kill as soon as its (new) temp file appears.
    bool seen = false;
    while (!seen && Clock::now() < start + kCap) {
      reap(one[0], false);
      if (one[0].exited)
        break;
      seen = withPrefix(dir.list(), ".tmp-").size() > before.size();
      if (!seen)
        usleep(500);
    }
    if (seen) {
      kill(one[0].pid, SIGKILL);
      one[0].killed = true;
    }
    reap(one[0], true);
    if (one[0].killed && WIFSIGNALED(one[0].status))
      ++killedMidWrite;
    // Whatever happened, the entry is complete or absent, never partial.
    auto state = verify(dir.path(), "large", nullptr, {0});
    EXPECT_NE(state[0], "corrupt") << "a partial entry became visible";
    if (state[0] == "hit")
      for (const std::string &name : withPrefix(dir.list(), ".tmp-"))
        unlink((dir.path() + "/" + name).c_str()); // start over clean
  }
  // The next process recompiles and rewrites a complete entry.
  std::vector<Worker> later = {spawn({dir.path(), "large", "plan", "0"})};
  ASSERT_TRUE(runAll(later, start + kCap, [](size_t, const std::string &) {}));
  EXPECT_TRUE(WIFEXITED(later[0].status) && WEXITSTATUS(later[0].status) == 0)
      << describe(later[0]);
  EXPECT_EQ(verify(dir.path(), "large", nullptr, {0})[0], "hit");
  std::vector<std::string> orphans = withPrefix(dir.list(), ".tmp-");
  EXPECT_LE(orphans.size(), size_t(killedMidWrite));
  std::printf("[          ] %d writers killed mid-write; %zu orphaned temp "
              "file(s) left (invisible to readers)\n",
              killedMidWrite, orphans.size());
}

// Temp files of writers killed mid-write are invisible to readers but stay
// (ProcessesKilledMidWrite). DISABLED until KernelCache sweeps them (the
// change proposed with docs/bad-inputs.md, "Kernel cache"): a writer removes
// temp files older than 10 minutes, never fresh ones (a live writer's).
TEST(CacheStressTest, StaleTempFilesAreSwept) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string stale = dir.path() + "/.tmp-0123456789abcdef-99999-1-0";
  std::string fresh = dir.path() + "/.tmp-0123456789abcdef-99998-2-0";
  for (const std::string &path : {stale, fresh}) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "partial", 7), 7);
    close(fd);
  }
  struct timeval old[2] = {{time(nullptr) - 3600, 0},
                           {time(nullptr) - 3600, 0}};
  ASSERT_EQ(utimes(stale.c_str(), old), 0);
  std::vector<Worker> one = {spawn({dir.path(), "fake", "plan", "0"})};
  ASSERT_TRUE(
      runAll(one, Clock::now() + kCap, [](size_t, const std::string &) {}));
  EXPECT_TRUE(WIFEXITED(one[0].status) && WEXITSTATUS(one[0].status) == 0)
      << describe(one[0]);
  EXPECT_NE(access(stale.c_str(), F_OK), 0) << "stale temp file kept";
  EXPECT_EQ(access(fresh.c_str(), F_OK), 0) << "a fresh temp file was removed";
}

} // namespace
