// actlab's compiled lean paths: the eager CPU paths of activations PyTorch has no op for (or whose op lacks a
// derivative of its own), as autograd nodes written in C++. They run the same aten calls, in the same order, as the
// entries' Python paths in actlab/kernels/implementations.py (bit for bit; tests/test_compiled.py checks it),
// without a Python autograd.Function: at the flagship's tensor sizes (100 x 256) that Function costs a quarter of
// F.silu's whole forward and backward by itself. A node is built the way PyTorch's generated code builds its own
// (next edges, a SavedVariable, the output's history), which measured as cheap as a native op's node.
//
// Backward runs here only in the plain case: grad mode off (no create_graph), a plain CPU gradient of the input's
// type, and a call the op covers. Otherwise (double backward, autograd's batched gradients, float64 hardsigmoid)
// the node calls the Python fallback set by actlab.kernels.compiled, which runs the general path's backward (the
// spec's differentiable expressions). A node keeps only the input (and a trained beta).
//
// Built on request by actlab.kernels.compiled.build() (`actlab build-ext`), for the installed torch.

#include <torch/extension.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <optional>
#include <typeinfo>

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
    return variable_list{swish_grad(grad, x, beta)};
  }
  py::tuple params(const Tensor&) const { return py::make_tuple(beta); }
};

// A trained one-element beta: read from memory (a CPU load, not a device synchronisation).
struct SwishLearnedOp {
  static constexpr const char* name = "swish";
  Tensor forward(const Tensor& x, const Tensor& w) const { return swish_into(x, w.item<double>()); }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor& w, bool needs_x, bool needs_w) const {
    double beta = w.item<double>();
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
    Tensor t = at::relu(x);
    return t.mul_(t);
  }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
    // addcmul from a broadcast 0-d zero: 2 relu(x) grad in one pass, rounded once
    return variable_list{at::addcmul(at::zeros({}, x.options()), at::relu(x), grad, 2.0)};
  }
  py::tuple params(const Tensor&) const { return py::make_tuple(); }
};

// ----- hardsigmoid: aten's op forward; its backward where it is right (not float64, whose kernel uses 1/6 rounded
// to float32) and no graph is recorded (aten's hardsigmoid_backward has no derivative of its own) ------------------

struct HardsigmoidOp {
  static constexpr const char* name = "hardsigmoid";
  Tensor forward(const Tensor& x, const Tensor&) const { return at::hardsigmoid(x); }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
    if (x.scalar_type() == at::kDouble) return std::nullopt;
    return variable_list{at::hardsigmoid_backward(grad, x)};
  }
  py::tuple params(const Tensor&) const { return py::make_tuple(); }
};

// ----- gated: a * gate(b) with a, b the halves of the last dimension; half types computed in float32 -------------
// Backward fills both halves of one buffer: da = grad gate(b), db = gate'(b) (grad a).

struct SwishGate {
  double beta;
  static constexpr const char* name = "swiglu";
  py::tuple params() const { return py::make_tuple(beta); }
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
    if (is_half(x)) return gated_forward(x.to(at::kFloat), gate).to(x.scalar_type());
    return gated_forward(x, gate);
  }
  Grads backward(const Tensor& grad, const Tensor& x, const Tensor&, bool, bool) const {
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
  m.def("swiglu", [](const Tensor& x, double beta) {
    return lean_apply(x, Tensor(), GatedOp<SwishGate>{{beta}});
  }, release);
  m.def("geglu", [](const Tensor& x, std::string approximate) {
    return lean_apply(x, Tensor(), GatedOp<GeluGate>{{std::move(approximate)}});
  }, release);
}
