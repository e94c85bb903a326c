// actlab's compiled lean paths: the eager CPU paths of activations PyTorch has no op for (or whose op lacks a
// derivative of its own), as autograd nodes written in C++, without a Python autograd.Function: at the flagship's
// tensor sizes (100 x 256) that Function costs a quarter of F.silu's whole forward and backward by itself. A node is
// built the way PyTorch's generated code builds its own (next edges, a SavedVariable, the output's history), which
// measured as cheap as a native op's node. For contiguous float32 and half-type inputs a node runs fused loops (one
// pass each way, aten's vector math); for float64 and strided inputs, the aten calls of the entries' Python paths in
// actlab/kernels/implementations.py, in the same order (bit for bit). tests/test_compiled.py checks both.
//
// Backward runs here only in the plain case: grad mode off (no create_graph), a plain CPU gradient of the input's
// type, and a call the op covers. Otherwise (double backward, autograd's batched gradients, float64 hardsigmoid)
// the node calls the Python fallback set by actlab.kernels.compiled, which runs the general path's backward (the
// spec's differentiable expressions). A node keeps only the input (and a trained beta).
//
// Built on request by actlab.kernels.compiled.build() (`actlab build-ext`), for the installed torch.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <algorithm>
#include <optional>
#include <type_traits>
#include <typeinfo>
#include <vector>

namespace py = pybind11;
using at::Tensor;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;
using Grads = std::optional<variable_list>;  // nullopt: the op leaves this backward to the fallback

namespace {

constexpr double kSwishThreshold = 40.0;  // softplus_backward's threshold: e^-40 < 2^-53
constexpr double kClamp = 1e4;            // silu' is exactly 0 and 1 beyond; beta x must not overflow to inf

py::object* fallback = nullptr;  // set once, never replaced or freed

bool is_half(const Tensor& t) {
  return t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
}

// Whether this file's backward applies: no graph to record, a plain CPU tensor (not a batched-gradient or
// functorch wrapper, not a Python subclass) of the input's type.
bool plain(const Tensor& grad, const Tensor& x) {
  if (at::GradMode::is_enabled() || !grad.defined() || grad.scalar_type() != x.scalar_type()) return false;
  c10::TensorImpl* impl = grad.unsafeGetTensorImpl();
  return typeid(*impl) == typeid(c10::TensorImpl) && !impl->key_set().has(c10::DispatchKey::Python) &&
         grad.device().is_cpu();
}

// The general path's backward: fallback(name, x, grad, params, needs_x, needs_params) -> (grad_x, *param grads).
variable_list call_fallback(const char* name, const Tensor& x, const Tensor& grad, const py::tuple& params,
                            bool needs_x, const py::tuple& needs_params) {
  TORCH_CHECK(fallback != nullptr, "actlab: the compiled lean paths' fallback is not set");
  try {
    py::tuple out = (*fallback)(name, x, grad, params, needs_x, needs_params);
    variable_list grads;
    for (auto item : out) grads.push_back(item.is_none() ? Tensor() : item.cast<Tensor>());
    return grads;
  } catch (py::error_already_set& e) {  // a C++ error the engine reports, not a Python one outliving the GIL
    throw std::runtime_error(e.what());
  }
}


// ----- fused loops: one pass forward and one backward where the aten calls would make several ---------------------
// Used for contiguous float32, bfloat16 and float16 inputs (half types loaded to float32 and rounded once on the
// store; a strided gradient made contiguous first); float64 and strided inputs take the aten calls below. Accuracy,
// not bits, is what they share with those calls: the formulas of aten's kernels (its vectorised erf, exp and tanh),
// with 1 - sigmoid(u) formed without cancellation and the inputs of derivatives clamped to +-1e4, where every
// derivative here has reached its limit.

using Vec = at::vec::Vectorized<float>;
constexpr int64_t kLanes = Vec::size();
constexpr int64_t kGrain = 32768;  // elements per task, as aten's own elementwise loops split work

bool fusable(const Tensor& t) {
  auto s = t.scalar_type();
  return t.is_contiguous() && (s == at::kFloat || s == at::kBFloat16 || s == at::kHalf);
}

// Loops go two float32 vectors at a time (16 elements built for AVX2, 32 for AVX-512): aten converts half types
// that many at a time. The helpers are always inlined: called, they pass their vectors through memory, which made
// a loop several times slower.
constexpr int64_t kBlock = 2 * kLanes;
struct Block {
  Vec v[2];
};

template <typename T>
C10_ALWAYS_INLINE Block load(const T* p, int64_t n) {  // the missing lanes of a tail are zeros
  Block b;
  if constexpr (std::is_same_v<T, float>) {
    if (n == kBlock) {
      b.v[0] = Vec::loadu(p);
      b.v[1] = Vec::loadu(p + kLanes);
    } else {
      b.v[0] = Vec::loadu(p, std::min(n, kLanes));
      b.v[1] = n > kLanes ? Vec::loadu(p + kLanes, n - kLanes) : Vec(0.0f);
    }
  } else if (n == kBlock) {
    at::vec::load_to_float<T>(p, b.v[0], b.v[1]);
  } else {
    T buf[kBlock];
    std::fill(buf, buf + kBlock, T(0.0f));
    std::copy(p, p + n, buf);
    at::vec::load_to_float<T>(buf, b.v[0], b.v[1]);
  }
  return b;
}

template <typename T>
C10_ALWAYS_INLINE void store(T* p, const Block& b, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (n == kBlock) {
      b.v[0].store(p);
      b.v[1].store(p + kLanes);
    } else {
      b.v[0].store(p, std::min(n, kLanes));
      if (n > kLanes) b.v[1].store(p + kLanes, n - kLanes);
    }
  } else {
    auto h = at::vec::convert_from_float<T>(b.v[0], b.v[1]);  // rounded to nearest even, once
    n == kBlock ? h.store(p) : h.store(p, n);
  }
}

// f(type tag) for the fused dtypes
template <typename F>
void dispatch_fused(at::ScalarType s, F f) {
  switch (s) {
    case at::kFloat: f(float{}); break;
    case at::kBFloat16: f(c10::BFloat16{}); break;
    case at::kHalf: f(c10::Half{}); break;
    default: TORCH_CHECK(false, "actlab: no fused loop for ", s);
  }
}

const Vec kOne(1.0f), kZero(0.0f), kHalfV(0.5f), kBig(static_cast<float>(kClamp)), kMinusBig(-static_cast<float>(kClamp));

// y = f(x) and gx = f'(x) grad, elementwise in one pass each
template <typename T, typename F>
void map_loop(const T* x, T* y, int64_t n, const F& f) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i += kBlock) {
      const int64_t m = std::min(kBlock, end - i);
      Block in = load(x + i, m);
      store(y + i, Block{{f(in.v[0]), f(in.v[1])}}, m);
    }
  });
}

template <typename T, typename F>
void grad_loop(const T* g, const T* x, T* gx, int64_t n, const F& f) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i += kBlock) {
      const int64_t m = std::min(kBlock, end - i);
      Block gb = load(g + i, m), xb = load(x + i, m);
      store(gx + i, Block{{f(gb.v[0], xb.v[0]), f(gb.v[1], xb.v[1])}}, m);
    }
  });
}

template <typename F>
Tensor map_fused(const Tensor& x, const F& f) {
  Tensor y = at::empty_like(x);
  dispatch_fused(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    map_loop<T>(x.const_data_ptr<T>(), y.mutable_data_ptr<T>(), x.numel(), f);
  });
  return y;
}

template <typename F>
Tensor grad_fused(const Tensor& grad, const Tensor& x, const F& f) {
  Tensor gx = at::empty_like(x), g = grad.contiguous();
  dispatch_fused(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    grad_loop<T>(g.const_data_ptr<T>(), x.const_data_ptr<T>(), gx.mutable_data_ptr<T>(), x.numel(), f);
  });
  return gx;
}

// swish's terms at x: u = beta x (clamped), s = sigmoid(u) and 1 - s, the latter as e s (e = exp(-u)) where s >= 1/2;
// silu'(u) = s (1 + u (1 - s)) is swish's derivative in x
C10_ALWAYS_INLINE void swish_terms(const Vec& x, const Vec& beta, Vec& u, Vec& s, Vec& one_minus_s) {
  u = at::vec::clamp(x * beta, kMinusBig, kBig);
  Vec e = (kZero - u).exp();
  s = kOne / (kOne + e);
  one_minus_s = Vec::blendv(e * s, kOne - s, u < kZero);
}

C10_ALWAYS_INLINE Vec silu_grad(const Vec& u, const Vec& s, const Vec& one_minus_s) {
  return s * (kOne + u * one_minus_s);
}

// swish's gradients in one pass: grad_x = grad silu'(beta x); with want_beta also the sum of grad x^2 sigmoid'(beta x)
// (in fixed chunks, each summed in float32 lanes and the chunks in double, so the result does not depend on threads)
template <typename T>
double swish_backward_loop(const T* g, const T* x, T* gx, int64_t n, float beta, bool want_beta) {
  constexpr int64_t kChunk = 4096;  // a multiple of kBlock
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(want_beta ? chunks : 0, 0.0);
  const Vec vb(beta);
  at::parallel_for(0, chunks, std::max<int64_t>(1, kGrain / kChunk), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      Vec acc(0.0f);
      const int64_t end = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; i += kBlock) {
        const int64_t m = std::min(kBlock, end - i);
        Block xb = load(x + i, m), gb = load(g + i, m), out;
        for (int k = 0; k < 2; ++k) {
          const Vec &vx = xb.v[k], &vg = gb.v[k];
          Vec u, s, oms;
          swish_terms(vx, vb, u, s, oms);
          out.v[k] = vg * silu_grad(u, s, oms);
          if (want_beta) acc = acc + vg * (s * oms) * vx * vx;  // the tail's lanes are zeros: they add 0
        }
        if (gx != nullptr) store(gx + i, out, m);
      }
      if (want_beta) {
        float lanes[kLanes];
        acc.store(lanes);
        double sum = 0.0;
        for (float v : lanes) sum += v;
        partial[c] = sum;
      }
    }
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

// grad_x (undefined where not needed) for contiguous grad and x of one fused dtype; with w, also d/dbeta summed,
// in w's shape and type
std::pair<Tensor, Tensor> swish_backward_fused(const Tensor& grad, const Tensor& x, double beta, bool needs_x,
                                               const Tensor& w = Tensor()) {
  Tensor gx = needs_x ? at::empty_like(x) : Tensor(), g = grad.contiguous();
  double total = 0.0;
  dispatch_fused(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    total = swish_backward_loop<T>(g.const_data_ptr<T>(), x.const_data_ptr<T>(),
                                   needs_x ? gx.mutable_data_ptr<T>() : nullptr, x.numel(),
                                   static_cast<float>(beta), w.defined());
  });
  return {gx, w.defined() ? at::full(w.sizes(), total, w.options()) : Tensor()};
}

// Gates for the fused gated loops: value(b) and, with the derivative, both at once.
struct FusedSwishGate {
  Vec beta;
  C10_ALWAYS_INLINE Vec value(const Vec& b) const {
    Vec u, s, oms;
    swish_terms(b, beta, u, s, oms);
    return b * s;
  }
  C10_ALWAYS_INLINE void both(const Vec& b, Vec& v, Vec& d) const {
    Vec u, s, oms;
    swish_terms(b, beta, u, s, oms);
    v = b * s;
    d = silu_grad(u, s, oms);
  }
};

struct FusedGeluGate {  // aten's gelu formulas; tanh: the "tanh" approximation
  bool tanh;
  static constexpr float kSqrtHalf = 0.70710678118654752f, kInvSqrt2Pi = 0.39894228040143268f;
  static constexpr float kSqrt2OverPi = 0.79788456080286536f, kKappa = 0.044715f;
  C10_ALWAYS_INLINE Vec value(const Vec& b) const {
    if (tanh) {
      Vec bc = at::vec::clamp(b, kMinusBig, kBig);
      Vec t = (Vec(kSqrt2OverPi) * (bc + Vec(kKappa) * bc * bc * bc)).tanh();
      return kHalfV * b * (kOne + t);
    }
    return b * (kHalfV * (kOne + (b * Vec(kSqrtHalf)).erf()));
  }
  C10_ALWAYS_INLINE void both(const Vec& b, Vec& v, Vec& d) const {
    Vec bc = at::vec::clamp(b, kMinusBig, kBig);
    if (tanh) {
      Vec sq = bc * bc;
      Vec t = (Vec(kSqrt2OverPi) * (bc + Vec(kKappa) * sq * bc)).tanh();
      Vec right = kOne + t;
      v = kHalfV * b * right;
      d = kHalfV * right + kHalfV * bc * (kOne - t * t) * Vec(kSqrt2OverPi) * (kOne + Vec(3.0f * kKappa) * sq);
      return;
    }
    Vec cdf = kHalfV * (kOne + (bc * Vec(kSqrtHalf)).erf());
    v = b * cdf;
    d = cdf + bc * Vec(kInvSqrt2Pi) * (Vec(-0.5f) * bc * bc).exp();
  }
};

int64_t grain_rows(int64_t width) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, width)); }

// y = a gate(b) over rows of x = [a | b] (each 2h wide)
template <typename T, typename Gate>
void gated_forward_loop(const T* x, T* y, int64_t rows, int64_t h, const Gate& gate) {
  at::parallel_for(0, rows, grain_rows(2 * h), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* a = x + r * 2 * h;
      const T* b = a + h;
      T* out = y + r * h;
      for (int64_t j = 0; j < h; j += kBlock) {
        const int64_t m = std::min(kBlock, h - j);
        Block ab = load(a + j, m), bb = load(b + j, m);
        store(out + j, Block{{ab.v[0] * gate.value(bb.v[0]), ab.v[1] * gate.value(bb.v[1])}}, m);
      }
    }
  });
}

// dx = [grad gate(b) | grad a gate'(b)]
template <typename T, typename Gate>
void gated_backward_loop(const T* x, const T* g, T* dx, int64_t rows, int64_t h, const Gate& gate) {
  at::parallel_for(0, rows, grain_rows(3 * h), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* a = x + r * 2 * h;
      const T* b = a + h;
      const T* gr = g + r * h;
      T* da = dx + r * 2 * h;
      T* db = da + h;
      for (int64_t j = 0; j < h; j += kBlock) {
        const int64_t m = std::min(kBlock, h - j);
        Block gb = load(gr + j, m), ab = load(a + j, m), bb = load(b + j, m), outa, outb;
        for (int k = 0; k < 2; ++k) {
          Vec v, d;
          gate.both(bb.v[k], v, d);
          outa.v[k] = gb.v[k] * v;
          outb.v[k] = gb.v[k] * ab.v[k] * d;
        }
        store(da + j, outa, m);
        store(db + j, outb, m);
      }
    }
  });
}

template <typename Gate>
Tensor gated_forward_fused(const Tensor& x, const Gate& gate) {
  const int64_t h = x.size(-1) / 2, rows = h == 0 ? 0 : x.numel() / (2 * h);
  auto shape = x.sizes().vec();
  shape.back() = h;
  Tensor y = at::empty(shape, x.options());
  dispatch_fused(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    gated_forward_loop<T>(x.const_data_ptr<T>(), y.mutable_data_ptr<T>(), rows, h, gate);
  });
  return y;
}

template <typename Gate>
Tensor gated_backward_fused(const Tensor& x, const Tensor& grad, const Gate& gate) {
  const int64_t h = x.size(-1) / 2, rows = h == 0 ? 0 : x.numel() / (2 * h);
  Tensor dx = at::empty_like(x), g = grad.contiguous();
  dispatch_fused(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    gated_backward_loop<T>(x.const_data_ptr<T>(), g.const_data_ptr<T>(), dx.mutable_data_ptr<T>(), rows, h, gate);
  });
  return dx;
}

// ----- swish at any beta: softplus_backward(x, x, beta, 40) = x sigmoid(beta x); d/dx = silu'(beta x) -----------

Tensor swish_into(const Tensor& b, double beta) {
  return beta == 1.0 ? at::silu(b) : at::softplus_backward(b, b, beta, kSwishThreshold);
}

Tensor scaled(const Tensor& b, double beta, bool own) {  // beta b, clamped for beta > 1; in b's buffer where own
  Tensor u = own ? b.mul_(beta) : at::mul(b, beta);
  return beta > 1.0 ? u.clamp_(-kClamp, kClamp) : u;
}

Tensor swish_grad(const Tensor& grad, const Tensor& x, double beta) {
  if (is_half(x)) {  // beta x formed in float32; silu_backward promotes the half gradient, rounded once
    Tensor u = scaled(x.to(at::kFloat), beta, /*own=*/true);
    return at::silu_backward_out(u, grad, u).to(grad.scalar_type());
  }
  if (beta == 1.0) return at::silu_backward(grad, x);
  Tensor u = scaled(x, beta, /*own=*/false);
  return at::silu_backward_out(u, grad, u);
}

// The ops: forward(x, w), backward(grad, x, w, needs_x, needs_w) (the fallback's where it gives nullopt) and the
// parameter values the fallback receives; w is undefined for ops without a trained weight.

struct SwishOp {
  double beta;
  static constexpr const char* name = "swish";
  Tensor forward(const Tensor& x, const Tensor&) const { return swish_into(x, beta); }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
    if (fusable(x)) return variable_list{swish_backward_fused(grad, x, beta, true).first};
    return variable_list{swish_grad(grad, x, beta)};
  }
  py::tuple params(const Tensor&) const { return py::make_tuple(beta); }
};

// A trained one-element beta's value: read from memory (a CPU load, not a device synchronisation), directly for
// the usual types.
double value_of(const Tensor& w) {
  if (w.scalar_type() == at::kFloat) return *w.const_data_ptr<float>();
  if (w.scalar_type() == at::kDouble) return *w.const_data_ptr<double>();
  return w.item<double>();
}

struct SwishLearnedOp {
  static constexpr const char* name = "swish";
  Tensor forward(const Tensor& x, const Tensor& w) const { return swish_into(x, value_of(w)); }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor& w, bool needs_x, bool needs_w) const {
    double beta = value_of(w);
    if (fusable(x)) {
      auto [grad_x, d] = swish_backward_fused(grad, x, beta, needs_x, needs_w ? w : Tensor());
      return variable_list{grad_x, d};
    }
    if (!needs_w) return variable_list{needs_x ? swish_grad(grad, x, beta) : Tensor(), Tensor()};
    Tensor xc = is_half(x) ? x.to(at::kFloat) : x;
    Tensor u = scaled(xc, beta, /*own=*/false);
    Tensor grad_x = needs_x ? at::silu_backward(grad, u) : Tensor();
    // d/dbeta = sum(grad x^2 sigmoid'(beta x)), formed in u's buffer and ended with a dot product
    at::sigmoid_backward_out(u, grad, at::sigmoid_(u)).mul_(xc);
    Tensor d = xc.is_contiguous() ? at::dot(u.reshape(-1), xc.reshape(-1)) : (u * xc).sum();
    return variable_list{grad_x.defined() ? grad_x.to(grad.scalar_type()) : grad_x,
                         d.reshape(w.sizes()).to(w.scalar_type())};
  }
  py::tuple params(const Tensor& w) const { return py::make_tuple(w); }
};

// ----- squared ReLU: relu(x)^2; d/dx = 2 relu(x) ---------------------------------------------------------------------

struct SquaredReluOp {
  static constexpr const char* name = "squared_relu";
  Tensor forward(const Tensor& x, const Tensor&) const {
    if (fusable(x)) return map_fused(x, [](const Vec& v) {
      Vec r = at::vec::clamp_min(v, kZero);  // NaN stays NaN, as relu's
      return r * r;
    });
    Tensor t = at::relu(x);
    return t.mul_(t);
  }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
    if (fusable(x)) return variable_list{grad_fused(grad, x, [](const Vec& g, const Vec& v) {
      return (Vec(2.0f) * at::vec::clamp_min(v, kZero)) * g;
    })};
    // addcmul from a broadcast 0-d zero: 2 relu(x) grad in one pass, rounded once
    return variable_list{at::addcmul(at::zeros({}, x.options()), at::relu(x), grad, 2.0)};
  }
  py::tuple params(const Tensor&) const { return py::make_tuple(); }
};

// ----- hardsigmoid: aten's formulas; its backward where it is right (not float64, whose kernel uses 1/6 rounded to
// float32) and no graph is recorded (aten's hardsigmoid_backward has no derivative of its own). Fused loops only
// below kAtenFrom elements: there they skip aten's per-call setup, which costs more than this arithmetic; above it
// aten's own kernels measured faster than the fused loops in bfloat16 (1.15x for the backward at 2^22) -----------

constexpr int64_t kAtenFrom = 1 << 16;

struct HardsigmoidOp {
  static constexpr const char* name = "hardsigmoid";
  Tensor forward(const Tensor& x, const Tensor&) const {
    if (fusable(x) && x.numel() < kAtenFrom) return map_fused(x, [](const Vec& v) {  // maximum/minimum keep NaN
      return at::vec::minimum(at::vec::maximum(v + Vec(3.0f), kZero), Vec(6.0f)) / Vec(6.0f);
    });
    return at::hardsigmoid(x);
  }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
    if (fusable(x) && x.numel() < kAtenFrom) return variable_list{grad_fused(grad, x, [](const Vec& g, const Vec& v) {
      return Vec::blendv(kZero, g * Vec(1.0f / 6.0f), (v > Vec(-3.0f)) & (v < Vec(3.0f)));  // 0 at +-3
    })};
    if (x.scalar_type() == at::kDouble) return std::nullopt;
    return variable_list{at::hardsigmoid_backward(grad, x)};
  }
  py::tuple params(const Tensor&) const { return py::make_tuple(); }
};

// ----- softsign: x / (1 + |x|); d/dx = 1 / (1 + |x|)^2. Otherwise the Python paths' aten calls (half types in
// float32, as that entry does) -------------------------------------------------------------------------------------

struct SoftsignOp {
  static constexpr const char* name = "softsign";
  static Tensor forward_aten(const Tensor& x) {
    Tensor t = x.abs().add_(1.0);
    return at::div_out(t, x, t);
  }
  static Tensor backward_aten(const Tensor& grad, const Tensor& x) {
    Tensor t = x.abs().add_(1.0);
    t.mul_(t);
    return at::div_out(t, grad, t);
  }
  Tensor forward(const Tensor& x, const Tensor&) const {
    if (fusable(x)) return map_fused(x, [](const Vec& v) { return v / (kOne + v.abs()); });
    if (is_half(x)) return forward_aten(x.to(at::kFloat)).to(x.scalar_type());
    return forward_aten(x);
  }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
    if (fusable(x)) return variable_list{grad_fused(grad, x, [](const Vec& g, const Vec& v) {
      Vec t = kOne + v.abs();
      return g / (t * t);  // t * t overflows to inf beyond 1.8e19: the derivative's limit, 0
    })};
    if (is_half(x)) return variable_list{backward_aten(grad.to(at::kFloat), x.to(at::kFloat)).to(x.scalar_type())};
    return variable_list{backward_aten(grad, x)};
  }
  py::tuple params(const Tensor&) const { return py::make_tuple(); }
};

// ----- gated: a * gate(b) with a, b the halves of the last dimension; half types computed in float32 -------------
// Backward fills both halves of one buffer: da = grad gate(b), db = gate'(b) (grad a).

struct SwishGate {
  double beta;
  static constexpr const char* name = "swiglu";
  py::tuple params() const { return py::make_tuple(beta); }
  FusedSwishGate fused() const { return FusedSwishGate{Vec(static_cast<float>(beta))}; }
  Tensor forward(const Tensor& b) const { return swish_into(b, beta); }
  void forward_into(Tensor& out, const Tensor& b) const {
    if (beta == 1.0) at::silu_out(out, b);
    else at::softplus_backward_out(out, b, b, beta, kSwishThreshold);
  }
  void grad_into(Tensor& g, const Tensor& b) const {  // g = g silu'(beta b), in place
    if (beta == 1.0) at::silu_backward_out(g, g, b);
    else at::silu_backward_out(g, g, scaled(b, beta, /*own=*/false));
  }
};

struct GeluGate {
  std::string approximate;
  static constexpr const char* name = "geglu";
  py::tuple params() const { return py::make_tuple(approximate); }
  FusedGeluGate fused() const { return FusedGeluGate{approximate == "tanh"}; }
  Tensor forward(const Tensor& b) const { return at::gelu(b, approximate); }
  void forward_into(Tensor& out, const Tensor& b) const { at::gelu_out(out, b, approximate); }
  void grad_into(Tensor& g, const Tensor& b) const { at::gelu_backward_out(g, g, b, approximate); }
};

template <typename Gate>
Tensor gated_forward(const Tensor& x, const Gate& gate) {
  std::vector<Tensor> halves = x.chunk(2, -1);
  return gate.forward(halves[1]).mul_(halves[0]);
}

template <typename Gate>
Tensor gated_backward(const Tensor& x, const Tensor& grad, const Gate& gate) {
  std::vector<Tensor> halves = x.chunk(2, -1);
  Tensor dx = at::empty_like(x);
  std::vector<Tensor> d = dx.chunk(2, -1);
  gate.forward_into(d[0], halves[1]);
  d[0].mul_(grad);
  at::mul_out(d[1], grad, halves[0]);
  gate.grad_into(d[1], halves[1]);
  return dx;
}

template <typename Gate>
struct GatedOp {
  Gate gate;
  static constexpr const char* name = Gate::name;
  Tensor forward(const Tensor& x, const Tensor&) const {
    if (fusable(x)) return gated_forward_fused(x, gate.fused());
    if (is_half(x)) return gated_forward(x.to(at::kFloat), gate).to(x.scalar_type());
    return gated_forward(x, gate);
  }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
    if (fusable(x)) return variable_list{gated_backward_fused(x, grad, gate.fused())};
    if (is_half(x)) return variable_list{gated_backward(x.to(at::kFloat), grad.to(at::kFloat), gate).to(x.scalar_type())};
    return variable_list{gated_backward(x, grad, gate)};
  }
  py::tuple params(const Tensor&) const { return gate.params(); }
};

// ----- the node ------------------------------------------------------------------------------------------------------

template <typename Op>
struct LeanBackward : torch::autograd::Node {
  Op op;
  SavedVariable x_, w_;
  bool has_w = false;

  explicit LeanBackward(Op o) : op(std::move(o)) {}

  variable_list apply(variable_list&& grads) override {
    const Tensor& grad = grads[0];
    if (!grad.defined()) return variable_list(num_outputs());
    Tensor x = x_.unpack(getptr());
    Tensor w = has_w ? w_.unpack(getptr()) : Tensor();
    bool needs_x = should_compute_output(0), needs_w = has_w && should_compute_output(1);
    Grads out;
    if (plain(grad, x)) out = op.backward(grad, x, w, needs_x, needs_w);
    if (!out) {
      py::gil_scoped_acquire gil;
      out = call_fallback(Op::name, x, grad, op.params(w), needs_x, py::make_tuple(needs_w));
    }
    out->resize(num_outputs());
    if (!needs_x) (*out)[0] = Tensor();
    return std::move(*out);
  }

  void release_variables() override {
    x_.reset_data();
    w_.reset_data();
  }

  std::string name() const override { return std::string(Op::name) + "_lean_backward"; }
};

// op.forward(x, w) with a LeanBackward node where autograd needs one; w: a trained weight, or undefined.
template <typename Op>
Tensor lean_apply(const Tensor& x, const Tensor& w, Op op) {
  Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    y = op.forward(x, w);
  }
  bool needs = w.defined() ? torch::autograd::compute_requires_grad(x, w) : torch::autograd::compute_requires_grad(x);
  if (needs) {
    auto node = c10::make_intrusive<LeanBackward<Op>>(std::move(op));
    if (w.defined()) {
      node->set_next_edges(torch::autograd::collect_next_edges(x, w));
      node->w_ = SavedVariable(w, false);
      node->has_w = true;
    } else {
      node->set_next_edges(torch::autograd::collect_next_edges(x));
    }
    node->x_ = SavedVariable(x, false);
    torch::autograd::set_history(y, node);
  }
  return y;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "actlab's compiled lean paths (see actlab.kernels.compiled)";
  // Set once: a backward on another thread may be inside the fallback (it holds the GIL only while Python runs),
  // so the object is never replaced or freed. actlab always passes the same function.
  m.def("set_fallback", [](py::object f) {
    if (fallback == nullptr) fallback = new py::object(std::move(f));
  });
  // The Tensor overload first: pybind's float conversion would also take a one-element tensor.
  // The GIL is released while aten runs, as torch's own bindings do.
  auto release = py::call_guard<py::gil_scoped_release>();
  m.def("swish", [](const Tensor& x, const Tensor& beta) { return lean_apply(x, beta, SwishLearnedOp{}); }, release);
  m.def("swish", [](const Tensor& x, double beta) { return lean_apply(x, Tensor(), SwishOp{beta}); }, release);
  m.def("squared_relu", [](const Tensor& x) { return lean_apply(x, Tensor(), SquaredReluOp{}); }, release);
  m.def("hardsigmoid", [](const Tensor& x) { return lean_apply(x, Tensor(), HardsigmoidOp{}); }, release);
  m.def("softsign", [](const Tensor& x) { return lean_apply(x, Tensor(), SoftsignOp{}); }, release);
  m.def("swiglu", [](const Tensor& x, double beta) {
    return lean_apply(x, Tensor(), GatedOp<SwishGate>{{beta}});
  }, release);
  m.def("geglu", [](const Tensor& x, std::string approximate) {
    return lean_apply(x, Tensor(), GatedOp<GeluGate>{{std::move(approximate)}});
  }, release);
}
