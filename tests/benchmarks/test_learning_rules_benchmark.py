"""benchmarks/learning_rules.py's FGSM measurement (issue #18): the attack takes the true
input gradient in eval mode and the rules' feedback gradient only when asked, and a real
search's selected model is attacked on the split the search used."""
import sys

import torch
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import learning_rules  # noqa: E402
from learning_rules import fgsm_accuracy  # noqa: E402

import nasforge  # noqa: E402
from nasforge.spaces import genome_from_dict  # noqa: E402


def twins(tmp_path):
    """A small fa-trained selected model and the same weights in a backprop-built network."""
    run = learning_rules.search_once("iris", "mlp", ("fa",), seed=0, budget=2, epochs=20, out=tmp_path / "run")
    model = nasforge.load_model(tmp_path / "run")
    record = nasforge.open_run(tmp_path / "run").best
    genome = record.genome
    plain = genome_from_dict({**genome, "layers": [{**layer, "rule": "backprop"} for layer in genome["layers"]],
                              "output_rule": "backprop"})
    assert set(plain.rules()) == {"backprop"}
    return run, model, plain


def test_the_true_gradient_attack_is_the_plain_networks_and_the_feedback_one_differs(tmp_path):
    torch.manual_seed(0)
    run, model, _ = twins(tmp_path)
    assert set(run.rules) == {"fa"} and set(run.fgsm) == set(learning_rules.EPSILONS)
    task = nasforge.load_task("iris", seed=0)
    X, y = task.X_test, task.y_test
    module = model.module
    clean = float((module(X).argmax(1) == y).float().mean())
    assert abs(clean - run.test) < 1e-6  # the model and split the search selected and tested
    assert fgsm_accuracy(module, X, y, 0.0) == clean  # no step, no change
    # the true gradient: the same as a network with no learning rules holding the same weights
    grads = {}
    for feedback in (False, True):
        module.eval()
        if feedback:
            for layer in module.modules():
                if isinstance(layer, (nasforge.learning_rules.RuleLinear, nasforge.learning_rules.RuleConv2d)):
                    layer.train()
        inputs = X.clone().requires_grad_(True)
        (grads[feedback],) = torch.autograd.grad(torch.nn.functional.cross_entropy(module(inputs), y), inputs)
    module.eval()
    assert not torch.equal(grads[False].sign(), grads[True].sign())  # fa sends a different error back
    strong = fgsm_accuracy(module, X, y, 1.0)
    assert strong < clean  # a large true-gradient step hurts
    assert run.fgsm[0.3][0] <= clean + 1e-9


def test_the_eval_mode_gradient_equals_a_backprop_networks_with_the_same_weights(tmp_path):
    _, model, plain_genome = twins(tmp_path)
    task = nasforge.load_task("iris", seed=0)
    plain = plain_genome.build(tuple(task.input_shape), task.n_classes)
    plain.load_state_dict(model.module.state_dict())
    plain.eval()
    for net in (model.module, plain):
        net.eval()
    grads = []
    for net in (model.module, plain):
        inputs = task.X_test.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(net(inputs), task.y_test), inputs)
        grads.append(g)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    eps = 0.3
    assert fgsm_accuracy(model.module, task.X_test, task.y_test, eps) == fgsm_accuracy(plain, task.X_test,
                                                                                       task.y_test, eps)
