// Native Verilator harness for the streamchip top level (built and driven by verif/native.py).
//
// It knows the chip's port names and the AXI4-Lite / AXI4-Stream handshakes, nothing else:
// every register address and value comes from the command file, which Python generates from
// isa/hostmap.py. Usage: chip_harness COMMANDS OUTPUT [WAVES.fst]
//
// Commands, one per line, numbers in hex (words: lanes * 8 bits, most significant digit first):
//   reset N              hold rst for N cycles, release, one more cycle
//   w ADDR VALUE         AXI4-Lite write (waits for the write response)
//   r ADDR               AXI4-Lite read, prints "r VALUE"
//   e ADDR WANT          read and compare; on a mismatch prints "mismatch ADDR GOT" and stops (exit 2)
//   s N                  the next N lines are words sent on s_axis, one beat each
//   g ADDR VALUE MAX     write VALUE to ADDR (START), then clock until `done` is high: prints
//                        "g CYCLES SECONDS", or "timeout CYCLES" after MAX cycles and stops (exit 3)
//   b ADDR VALUE N       the bare loop: the same write, then N clock cycles without any check;
//                        prints "b N SECONDS"
//   u N                  accept N beats on m_axis, prints "u DATA USER" per beat
// At the end it prints "t s SECONDS CYCLES BEATS" and "t u ..." (time spent loading and unloading).
// Profiling (bench/profile.py): with HARNESS_PERF_CTL / HARNESS_PERF_ACK naming `perf record
// --control` fifos, sampling is enabled only around the run loops of g and b.
// Blank lines and lines starting with # are ignored. On any failure the last output line says why
// and the exit code is nonzero (1 bad input, 2 mismatch, 3 timeout, 4 a handshake that never ends).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Vchip.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_fst_c.h"
#endif

namespace {

const uint64_t HANDSHAKE_LIMIT = 100000;  // cycles any single bus handshake may take

std::unique_ptr<VerilatedContext> ctx;
std::unique_ptr<Vchip> top;
#if VM_TRACE
std::unique_ptr<VerilatedFstC> waves;
#endif
FILE* out = nullptr;
uint64_t cycle = 0;

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// perf record --control: enable / disable sampling and wait for perf's acknowledgement
int perf_ctl = -1, perf_ack = -1;
void perf(const char* what) {
    if (perf_ctl < 0) return;
    char ack[16];
    if (write(perf_ctl, what, std::strlen(what)) < 0 || read(perf_ack, ack, sizeof ack) < 0) perf_ctl = -1;
}

// Close the waveform and free the model in order (before static destruction).
void shutdown() {
    top->final();
#if VM_TRACE
    if (waves) waves->close();
    waves.reset();
#endif
    top.reset();
    ctx.reset();
}

// Report one line on the output file and stop with `code` (the Python side turns it into an error).
[[noreturn]] void fail(int code, const char* fmt, unsigned long long a, unsigned long long b = 0) {
    std::fprintf(out, fmt, a, b);
    std::fputc('\n', out);
    std::fclose(out);
    shutdown();
    std::exit(code);
}

inline void dump() {
#if VM_TRACE
    if (waves) waves->dump(ctx->time());
#endif
}

// One clock cycle: rising edge, then falling edge. Inputs change while clk is low.
inline void tick() {
    top->clk = 1;
    top->eval();
    ctx->timeInc(5);
    dump();
    top->clk = 0;
    top->eval();
    ctx->timeInc(5);
    dump();
    ++cycle;
}

// Ports up to 64 bits are integers, wider ones VlWide<N>: copy 32-bit words in and out.
template <std::size_t N> void put(VlWide<N>& p, const uint32_t* w) { for (std::size_t i = 0; i < N; ++i) p[i] = w[i]; }
template <class T> void put(T& p, const uint32_t* w) {
    uint64_t v = w[0];
    if (sizeof(T) > 4) v |= uint64_t(w[1]) << 32;
    p = T(v);
}
template <std::size_t N> void get(const VlWide<N>& p, uint32_t* w) { for (std::size_t i = 0; i < N; ++i) w[i] = p[i]; }
template <class T> void get(const T& p, uint32_t* w) {
    w[0] = uint32_t(uint64_t(p));
    if (sizeof(T) > 4) w[1] = uint32_t(uint64_t(p) >> 32);
}
template <class T> constexpr std::size_t words_of(const T&) { return sizeof(T) < 4 ? 1 : sizeof(T) / 4; }

// "0123abcd..." (most significant digit first) -> little-endian 32-bit words
void parse_hex(const char* s, uint32_t* w, std::size_t n) {
    std::memset(w, 0, n * 4);
    std::size_t len = std::strcspn(s, " \r\n");
    for (std::size_t k = 0; k < len; ++k) {
        char c = s[len - 1 - k];
        uint32_t d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        if (k / 8 < n) w[k / 8] |= d << (4 * (k % 8));
    }
}

void print_hex(const uint32_t* w, std::size_t n) {
    for (std::size_t i = n; i-- > 0;) std::fprintf(out, "%08x", w[i]);
}

void axil_write(uint32_t addr, uint32_t value) {
    top->s_axil_awaddr = addr;
    top->s_axil_wdata = value;
    top->s_axil_wstrb = 0xF;
    top->s_axil_awvalid = 1;
    top->s_axil_wvalid = 1;
    top->s_axil_bready = 1;
    for (uint64_t n = 0;; ++n) {
        top->eval();
        bool taken = top->s_axil_awready && top->s_axil_wready;
        tick();
        if (taken) break;
        if (n == HANDSHAKE_LIMIT) fail(4, "axil write %llx not accepted within %llu cycles", addr, HANDSHAKE_LIMIT);
    }
    top->s_axil_awvalid = 0;
    top->s_axil_wvalid = 0;
    for (uint64_t n = 0;; ++n) {
        top->eval();
        bool resp = top->s_axil_bvalid;
        tick();
        if (resp) break;
        if (n == HANDSHAKE_LIMIT) fail(4, "axil write %llx got no response within %llu cycles", addr, HANDSHAKE_LIMIT);
    }
    top->s_axil_bready = 0;
}

uint32_t axil_read(uint32_t addr) {
    top->s_axil_araddr = addr;
    top->s_axil_arvalid = 1;
    top->s_axil_rready = 1;
    for (uint64_t n = 0;; ++n) {
        top->eval();
        bool taken = top->s_axil_arready;
        tick();
        if (taken) break;
        if (n == HANDSHAKE_LIMIT) fail(4, "axil read %llx not accepted within %llu cycles", addr, HANDSHAKE_LIMIT);
    }
    top->s_axil_arvalid = 0;
    uint32_t value = 0;
    for (uint64_t n = 0;; ++n) {
        top->eval();
        bool valid = top->s_axil_rvalid;
        value = top->s_axil_rdata;
        tick();
        if (valid) break;
        if (n == HANDSHAKE_LIMIT) fail(4, "axil read %llx got no data within %llu cycles", addr, HANDSHAKE_LIMIT);
    }
    top->s_axil_rready = 0;
    return value;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s COMMANDS OUTPUT [WAVES.fst]\n", argv[0]);
        return 1;
    }
    FILE* in = std::fopen(argv[1], "r");
    out = std::fopen(argv[2], "w");
    if (!in || !out) {
        std::fprintf(stderr, "%s: cannot open %s or %s\n", argv[0], argv[1], argv[2]);
        return 1;
    }
    ctx = std::make_unique<VerilatedContext>();
    top = std::make_unique<Vchip>(ctx.get());
#if VM_TRACE
    if (argc > 3) {
        ctx->traceEverOn(true);
        waves = std::make_unique<VerilatedFstC>();
        top->trace(waves.get(), 99);
        waves->open(argv[3]);
    }
#endif
    if (const char* ctl = std::getenv("HARNESS_PERF_CTL")) {
        perf_ctl = open(ctl, O_WRONLY);
        perf_ack = open(std::getenv("HARNESS_PERF_ACK"), O_RDONLY);
    }
    top->clk = 0;
    top->m_axis_tready = 0;
    top->eval();

    const std::size_t dwords = words_of(top->s_axis_tdata), uwords = words_of(top->m_axis_tuser);
    std::vector<uint32_t> data(dwords > 2 ? dwords : 2), user(uwords > 2 ? uwords : 2);
    double t_stream = 0, t_unload = 0;
    uint64_t c_stream = 0, c_unload = 0, n_stream = 0, n_unload = 0;
    std::vector<char> line(64 + 2 * 8 * dwords);
    while (std::fgets(line.data(), int(line.size()), in)) {
        char cmd[16] = "";
        int skip = 0;
        std::sscanf(line.data(), "%15s%n", cmd, &skip);
        const std::string op = cmd;
        const char* args = line.data() + skip;
        unsigned long long a = 0, b = 0, c = 0;
        if (op.empty() || op[0] == '#') {
        } else if (op == "w") {
            std::sscanf(args, "%llx %llx", &a, &b);
            axil_write(uint32_t(a), uint32_t(b));
        } else if (op == "r" || op == "e") {
            std::sscanf(args, "%llx %llx", &a, &b);
            uint32_t v = axil_read(uint32_t(a));
            if (op == "r") std::fprintf(out, "r %x\n", v);
            else if (v != b) fail(2, "mismatch %llx %llx", a, v);
        } else if (op == "reset") {
            std::sscanf(args, "%llx", &a);
            top->rst = 1;
            for (unsigned long long k = 0; k < a; ++k) tick();
            top->rst = 0;
            tick();
        } else if (op == "s") {
            std::sscanf(args, "%llx", &a);
            double t0 = now();
            uint64_t c0 = cycle;
            top->s_axis_tlast = 0;
            for (unsigned long long k = 0; k < a; ++k) {
                if (!std::fgets(line.data(), int(line.size()), in)) fail(1, "commands end inside s (beat %llu of %llu)", k, a);
                parse_hex(line.data(), data.data(), dwords);
                put(top->s_axis_tdata, data.data());
                top->s_axis_tvalid = 1;
                top->s_axis_tlast = k + 1 == a;
                for (uint64_t n = 0;; ++n) {
                    top->eval();
                    bool taken = top->s_axis_tready;
                    tick();
                    if (taken) break;
                    if (n == HANDSHAKE_LIMIT) fail(4, "s_axis beat %llu not accepted within %llu cycles", k, HANDSHAKE_LIMIT);
                }
            }
            top->s_axis_tvalid = 0;
            top->s_axis_tlast = 0;
            t_stream += now() - t0;
            c_stream += cycle - c0;
            n_stream += a;
        } else if (op == "u") {
            std::sscanf(args, "%llx", &a);
            double t0 = now();
            uint64_t c0 = cycle;
            top->m_axis_tready = 1;
            for (unsigned long long k = 0; k < a; ++k) {
                for (uint64_t n = 0;; ++n) {
                    top->eval();
                    bool valid = top->m_axis_tvalid;
                    if (valid) {
                        get(top->m_axis_tdata, data.data());
                        get(top->m_axis_tuser, user.data());
                    }
                    tick();
                    if (valid) break;
                    if (n == HANDSHAKE_LIMIT) fail(4, "m_axis beat %llu not sent within %llu cycles", k, HANDSHAKE_LIMIT);
                }
                std::fputs("u ", out);
                print_hex(data.data(), dwords);
                std::fputc(' ', out);
                print_hex(user.data(), uwords);
                std::fputc('\n', out);
            }
            top->m_axis_tready = 0;
            t_unload += now() - t0;
            c_unload += cycle - c0;
            n_unload += a;
        } else if (op == "g") {          // START, then the run loop: nothing but the clock and `done`
            std::sscanf(args, "%llx %llx %llx", &a, &b, &c);
            double t0 = now();
            uint64_t c0 = cycle;
            axil_write(uint32_t(a), uint32_t(b));
            const uint64_t limit = c0 + c;
            perf("enable\n");
            while (!top->done) {
                if (cycle >= limit) fail(3, "timeout %llu", cycle - c0);
                tick();
            }
            perf("disable\n");
            std::fprintf(out, "g %llu %.9f\n", (unsigned long long)(cycle - c0), now() - t0);
        } else if (op == "b") {          // the bare loop, for the benchmark: no checks at all
            std::sscanf(args, "%llx %llx %llx", &a, &b, &c);
            double t0 = now();
            uint64_t c0 = cycle;
            axil_write(uint32_t(a), uint32_t(b));
            perf("enable\n");
            for (uint64_t k = cycle - c0; k < c; ++k) tick();
            perf("disable\n");
            std::fprintf(out, "b %llu %.9f\n", (unsigned long long)(cycle - c0), now() - t0);
        } else {
            fail(1, "unknown command at byte %llu of the command file", (unsigned long long)std::ftell(in));
        }
    }
    std::fprintf(out, "t s %.9f %llu %llu\n", t_stream, (unsigned long long)c_stream, (unsigned long long)n_stream);
    std::fprintf(out, "t u %.9f %llu %llu\n", t_unload, (unsigned long long)c_unload, (unsigned long long)n_unload);
    std::fclose(out);
    std::fclose(in);
    shutdown();
    return 0;
}
