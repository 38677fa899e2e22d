"""Playground: change the synthetic generator and the loss weights, train a tiny AO-FL live."""

from dataclasses import asdict

import streamlit as st

from aofl import analysis, playground_runs, plots
from aofl.alpha import alpha_caption, alpha_table
from aofl.app import context, widgets
from aofl.model import VARIANT_HELP, VARIANTS
from aofl.playground import RANGES, PlaygroundSpec
from aofl.playground_process import train_in_subprocess

# the Playground needs no checkpoint, but a deep link as a fresh server's first request ran this file
# alone: context() moves it back through app.py (its sidebar and navigation)
context.context()
st.title("Playground")
st.caption(
    "Teaching mode: a tiny model on a small synthetic dataset, trained here in seconds. "
    "Nothing is saved; the checkpoints in the sidebar are not used."
)

with st.expander("The method in five formulas (our reconstruction: docs/method.md)", expanded=False):
    st.markdown(
        "Each modality $m$'s context-encoded utterance feature $x_{m,i}$ is split into a **shared** part "
        "$g_{m,i}=G_m(x_{m,i})$ and a **specific** part $h_{m,i}=H_m(x_{m,i})$. Their angle is"
    )
    st.latex(
        r"\theta_{m,i} = \arccos \frac{\langle g_{m,i}, h_{m,i}\rangle}{\lVert g_{m,i}\rVert\,\lVert h_{m,i}\rVert}"
        r"\in [0^\circ, 180^\circ]"
    )
    st.markdown(
        "**L_CEN** pulls the shared parts of the same utterance together across modalities and pushes "
        "away shared parts of other utterances with another emotion (supervised InfoNCE, temperature $\\tau$):"
    )
    st.latex(
        r"L_{CEN} = -\frac{1}{|P|}\sum_{(s,m),i} \log \frac{e^{\cos(g_{s,i}, g_{m,i})/\tau}}"
        r"{e^{\cos(g_{s,i}, g_{m,i})/\tau} + \sum_{k,\,j\neq i,\,y_j\neq y_i} e^{\cos(g_{s,i}, g_{k,j})/\tau}}"
    )
    st.markdown(
        "**L_AAC** pulls $\\theta$ towards a target angle $\\alpha_m$ per modality (instead of forcing "
        "90°). $\\alpha_m$ starts at the *initial alpha* slider; its only gradient is L_AAC's, and in a "
        "whole run it often moves only a degree or two (the shipped synthetic and IEMOCAP `full`; MELD's "
        "moved about 10°): then it is a hyper-parameter, not a learned angle. The chart below shows it "
        "start → end. The mean over all $M$ modalities and $N$ utterances of "
        "the batch, angles in radians:"
    )
    st.latex(
        r"L_{AAC} = \frac{1}{MN}\sum_{m=1}^{M}\sum_{i=1}^{N} \left(\theta_{m,i} - \alpha_m\right)^2,\qquad "
        r"\alpha_m = \pi\,\sigma(w_m)"
    )
    st.markdown(
        "**L_CSR** ranks the angles: shared and specific must be further apart than the shared parts of "
        "two modalities, $\\theta_{m,i} > \\phi_{m,i}$ with $\\phi_{m,i} = \\angle(g_{m,i}, g_{s,i})$ "
        "averaged over $s \\neq m$ (margin $\\delta$):"
    )
    st.latex(
        r"L_{CSR} = \frac{1}{MN}\sum_{m=1}^{M}\sum_{i=1}^{N} "
        r"\max\left(0,\ \cos\theta_{m,i} - \cos\phi_{m,i} + \delta\right)"
    )
    st.markdown(
        "**OPR** removes from the specific part what the shared part already says, and enriches the "
        "shared part with the conversation ($C_m$: masked attention over the dialogue). The projected "
        "$\\tilde h$ is orthogonal to $g$ **whatever $\\theta$ is**; $\\theta$ only sets its length, "
        "$\\lVert\\tilde h\\rVert = \\lVert h\\rVert\\sin\\theta$. The angle losses shape the raw $h$; "
        "the classifier sees $\\tilde h$:"
    )
    st.latex(
        r"\tilde h_{m,i} = h_{m,i} - \frac{\langle h_{m,i}, g_{m,i}\rangle}{\lVert g_{m,i}\rVert^2}\, g_{m,i},"
        r"\qquad \tilde g_{m,i} = g_{m,i} + C_m(g_{m,1..T})_i"
    )
    st.markdown(
        "The total loss: the auxiliary terms are scaled by the warm-up factor $w_e$, which ramps "
        "linearly from 0 in epoch 1 to 1 after the warm-up's $E_w$ epochs (1 throughout without a warm-up; "
        "the Playground trains without one):"
    )
    st.latex(
        r"L = L_{CE} + w_e\left(\lambda_{cen} L_{CEN} + \lambda_{aac} L_{AAC} + \lambda_{csr} L_{CSR}\right),"
        r"\qquad w_e = \min\left(1, \frac{e-1}{E_w}\right)"
    )

DEFAULT = PlaygroundSpec()  # the sliders start at the spec's defaults (the CLI's too)
with st.form("playground_form"):
    st.markdown("**Synthetic data**")
    c = st.columns(4)
    shared_strength = c[0].slider(
        "Shared strength",
        *RANGES["shared_strength"],
        DEFAULT.shared_strength,
        0.1,
        key="pg_shared",
        help="how strongly the emotion shows in the factor all modalities share",
    )
    specific_strength = c[1].slider(
        "Specific strength",
        *RANGES["specific_strength"],
        DEFAULT.specific_strength,
        0.1,
        key="pg_specific",
        help="strength of the modality-own factors (some classes are only told apart there)",
    )
    noise = c[2].slider("Noise", *RANGES["noise"], DEFAULT.noise, 0.1, key="pg_noise")
    n_dialogues = c[3].slider("Dialogues", *RANGES["n_dialogues"], DEFAULT.n_dialogues, 4, key="pg_dialogues")
    st.markdown("**Model and losses**")
    c = st.columns(4)
    lambda_cen = c[0].slider("lambda_cen", *RANGES["lambda_cen"], DEFAULT.lambda_cen, 0.1, key="pg_cen")
    lambda_aac = c[1].slider("lambda_aac", *RANGES["lambda_aac"], DEFAULT.lambda_aac, 0.1, key="pg_aac")
    lambda_csr = c[2].slider("lambda_csr", *RANGES["lambda_csr"], DEFAULT.lambda_csr, 0.1, key="pg_csr")
    alpha_init = c[3].slider(
        "initial alpha (deg)", *RANGES["alpha_init_deg"], DEFAULT.alpha_init_deg, 5.0, key="pg_alpha"
    )
    c = st.columns(4)
    variant = c[0].selectbox(
        "Variant", list(VARIANTS), key="pg_variant", format_func=lambda v: f"{v}: {VARIANT_HELP[v]}"
    )
    epochs = c[1].slider("Epochs", *RANGES["epochs"], DEFAULT.epochs, key="pg_epochs")
    seed = c[2].number_input("Seed", *RANGES["seed"], DEFAULT.seed, key="pg_seed")
    c[3].markdown("&nbsp;")
    submitted = st.form_submit_button("Train", type="primary")

if submitted:
    spec = PlaygroundSpec(
        variant=variant,
        n_dialogues=int(n_dialogues),
        shared_strength=shared_strength,
        specific_strength=specific_strength,
        noise=noise,
        lambda_cen=lambda_cen,
        lambda_aac=lambda_aac,
        lambda_csr=lambda_csr,
        alpha_init_deg=alpha_init,
        epochs=int(epochs),
        seed=int(seed),
    )
    bar = st.progress(0.0, text="training ...")

    def on_epoch(info):
        bar.progress(
            info["epoch"] / info["epochs"],
            text=f"epoch {info['epoch']}/{info['epochs']} · loss {info['loss_total']:.3f} · "
            f"valid weighted F1 {info['valid_weighted_f1']:.3f}",
        )

    # in its own process: the server keeps neither torch.optim's imports nor the training's memory
    def on_wait(seconds):
        bar.progress(0.0, text=f"waiting for a free training slot (others are training) · {seconds:.0f} s")

    outcome = train_in_subprocess(
        spec, (context.current() or context.Context()).device, on_epoch, on_wait=on_wait
    )
    bar.progress(1.0, text=f"done in {outcome['seconds']:.1f} s (best epoch {outcome['best_epoch']})")
    st.session_state["playground"] = outcome
    runs = st.session_state.setdefault("playground_runs", [])
    runs.append(playground_runs.record(asdict(spec), outcome))
    del runs[: -playground_runs.MAX_RUNS]

run = st.session_state.get("playground")
if run is None:
    st.info("Set the sliders and press **Train** (about 10-20 s on a laptop CPU).")
    st.stop()

st.subheader(f"Result: {run['variant']} ({run['seconds']:.1f} s)")
c = st.columns(4)
c[0].metric("Test weighted F1", f"{run['metrics']['weighted_f1']:.3f}")
c[1].metric("Test accuracy", f"{run['metrics']['accuracy']:.3f}")
dis = run["metrics"].get("disentanglement")
if dis:
    c[2].metric("shared recovers shared (CKA)", f"{dis['shared_recovers_shared']:.3f}")
    c[3].metric("specific recovers specific (CKA)", f"{dis['specific_recovers_specific']:.3f}")

history = analysis.history_frame(run["history"])
widgets.show_figure(
    plots.training_curves(history, "Training curves"),
    history,
    "playground_history",
    key="pg_curves",
    download_key="pg_dl_history",
)

frame = playground_runs.runs_frame(st.session_state.get("playground_runs", []))
with st.expander(
    f"Your runs this session ({len(frame)}): how far do seeds alone move the score?", expanded=True
):
    st.markdown(playground_runs.reading(frame))
    widgets.show_figure(
        plots.seed_strip(
            frame[["setting", "seed", "test_wf1"]].rename(columns={"setting": "variant"}),
            "Test weighted F1 (%) per run, by setting",
        ),
        frame,
        "playground_runs",
        key="pg_runs_fig",
        download_key="pg_dl_runs",
    )
    st.dataframe(playground_runs.spread_summary(frame), hide_index=True, key="pg_runs_spread")
    st.caption(
        "The seed draws both the synthetic data and the model's initial weights. Runs with the same "
        "settings and different seeds show what chance alone does; one run per setting cannot tell two "
        "settings apart. The Evidence page holds every dataset to the same rule, over all the seeds kept."
    )
    if st.button("Forget these runs", key="pg_runs_clear"):
        st.session_state["playground_runs"] = []
        st.rerun()

if not run["has_split"]:
    st.info("The baseline variant has no shared/specific split: no angles or feature embedding to show.")
    st.stop()
long = analysis.angles_long(run["table"], run["modalities"])
left, right = st.columns(2)
with left:
    widgets.show_figure(
        plots.angle_distribution(long, "theta", x="label", color="outcome"),
        long,
        "playground_angles",
        key="pg_theta",
        download_key="pg_dl_angles",
    )
with right:
    alpha = analysis.alpha_frame(run["alpha"], long.groupby("modality")["theta"].mean().to_dict())
    moved = alpha_table(run.get("alpha_start") or {}, run["alpha"])
    if not moved.empty and not alpha.empty:
        alpha = alpha.merge(moved[["modality", "alpha_start_deg", "learned"]], on="modality", how="left")
    widgets.show_figure(
        plots.alpha_bars(alpha), alpha, "playground_alpha", key="pg_alpha_fig", download_key="pg_dl_alpha"
    )
    if not moved.empty:
        st.caption(alpha_caption(moved))
widgets.show_figure(plots.theta_phi_scatter(long), None, "playground_scatter", key="pg_scatter")

if run["embedding"] is not None:
    emb = run["embedding"]
    st.markdown("**PCA of the shared and specific features** (test split, all modalities)")
    cols = st.columns(2)
    for col, kind in zip(cols, ("shared", "specific")):
        with col:
            widgets.show_figure(
                plots.embedding_scatter(
                    emb[emb["kind"] == kind],
                    color="label",
                    title=f"{kind} (g)" if kind == "shared" else f"{kind} (h)",
                ),
                None,
                f"playground_embedding_{kind}",
                key=f"pg_emb_{kind}",
            )
    widgets.download_csv(emb, "playground_embedding", key="pg_dl_emb")
