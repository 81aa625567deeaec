"""Classifier backends an evaluation trains: fit, decision values, calibrated probabilities, save, load.

The baseline is TF-IDF (word 1-2-grams + character 2-5-grams inside word boundaries) and a
linear SVM (scikit-learn's LinearSVC, liblinear, seeded), with its confidences calibrated by
temperature scaling: one number `beta`, fitted on out-of-fold decision values, turns the SVM's
margins into probabilities softmax(beta * margin). A single scale never changes which intent
wins, so accuracy is exactly that of the plain SVM.

A saved model is plain data, never pickle: `model.json` (the backend name, parameters, the
vocabularies as term -> column and the intent ids) and `arrays.npz` (idf weights, SVM weights,
intercepts as float32), read back with numpy.load(allow_pickle=False), which can only produce
numeric arrays. Loading a model file therefore cannot run code, whoever wrote the file.

Another backend (embeddings, a transformer) fits in by implementing the same few methods and
registering in BACKENDS.
"""

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

MODEL_JSON = "model.json"
MODEL_ARRAYS = "arrays.npz"
FORMAT_VERSION = 1


def word_vectorizer(*, max_features: int | None, min_df: int) -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, max_features=max_features,
                           dtype=np.float32)


def char_vectorizer(*, max_features: int | None, min_df: int) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=min_df, sublinear_tf=True,
                           max_features=max_features, dtype=np.float32)


def temperature_fit(decision: np.ndarray, labels: np.ndarray) -> float:
    """The beta minimising the log loss of softmax(beta * decision) against `labels` (column indices)."""
    rows = np.arange(len(labels))

    def loss(log_beta: float) -> float:
        return -log_softmax(np.exp(log_beta) * decision, axis=1)[rows, labels].mean()

    found = minimize_scalar(loss, bounds=(-5.0, 6.0), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


class TfidfSvmBackend:
    """TF-IDF word + char n-grams and a linear SVM; see the module docstring."""

    name = "tfidf-svm"

    def __init__(self, *, C: float = 1.0, min_df: int = 2, max_word_features: int = 20000,
                 max_char_features: int = 60000, seed: int = 42):
        self.params = {"C": C, "min_df": min_df, "max_word_features": max_word_features,
                       "max_char_features": max_char_features, "seed": seed}
        self.word = self.char = None
        self.classes = np.zeros(0, dtype=np.int64)  # intent ids, one per column
        self.coef = self.intercept = None
        self.beta = 1.0

    # Features -------------------------------------------------------------------------------

    def features_fit(self, texts: list[str]) -> sp.csr_matrix:
        """Learn the vocabularies and idf weights from `texts` (no labels) and return their features."""
        p = self.params
        min_df = p["min_df"] if len(texts) >= 50 * p["min_df"] else 1  # tiny topics keep every term
        self.word = word_vectorizer(max_features=p["max_word_features"], min_df=min_df)
        self.char = char_vectorizer(max_features=p["max_char_features"], min_df=min_df)
        return sp.hstack([self.word.fit_transform(texts), self.char.fit_transform(texts)], format="csr")

    def features(self, texts: list[str]) -> sp.csr_matrix:
        return sp.hstack([self.word.transform(texts), self.char.transform(texts)], format="csr")

    # Classifier ------------------------------------------------------------------------------

    def svm_fit(self, X: sp.csr_matrix, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit the SVM on features `X`; returns (classes, coef, intercept) without keeping them."""
        classes = np.unique(labels)
        if len(classes) < 2:
            raise ValueError("an SVM needs at least two intents")
        svm = LinearSVC(C=self.params["C"], random_state=self.params["seed"])
        svm.fit(X, labels)
        coef, intercept = svm.coef_.astype(np.float32), svm.intercept_.astype(np.float32)
        if len(classes) == 2:  # liblinear's binary case: one margin, positive for classes[1]
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        return classes, coef, intercept

    @staticmethod
    def svm_decision(X: sp.csr_matrix, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        return np.asarray(X @ coef.T, dtype=np.float32) + intercept

    def classifier_fit(self, X: sp.csr_matrix, labels: np.ndarray) -> None:
        self.classes, self.coef, self.intercept = self.svm_fit(X, labels)

    def calibrate(self, decision: np.ndarray, labels: np.ndarray) -> None:
        """Fit the temperature on out-of-fold `decision` values (columns = self.classes) and `labels`."""
        columns = np.searchsorted(self.classes, labels)
        self.beta = temperature_fit(decision, columns)

    def fit(self, texts: list[str], labels) -> "TfidfSvmBackend":
        """Features and SVM on `texts` (uncalibrated: beta stays 1 until calibrate())."""
        self.classifier_fit(self.features_fit(texts), np.asarray(labels, dtype=np.int64))
        return self

    def decision(self, texts_or_features) -> np.ndarray:
        X = texts_or_features if sp.issparse(texts_or_features) else self.features(list(texts_or_features))
        return self.svm_decision(X, self.coef, self.intercept)

    def probabilities(self, decision: np.ndarray) -> np.ndarray:
        return softmax(self.beta * decision.astype(np.float64), axis=1)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Calibrated probabilities, one column per intent id of self.classes."""
        return self.probabilities(self.decision(texts))

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.classes[self.decision(texts).argmax(axis=1)]

    # Files -----------------------------------------------------------------------------------

    def save(self, folder: Path) -> list[str]:
        """Write model.json and arrays.npz into `folder`; returns the file names."""
        folder.mkdir(parents=True, exist_ok=True)
        document = {
            "format": FORMAT_VERSION, "backend": self.name, "params": self.params, "beta": self.beta,
            "classes": [int(c) for c in self.classes],
            "word_vocabulary": {t: int(i) for t, i in self.word.vocabulary_.items()},
            "char_vocabulary": {t: int(i) for t, i in self.char.vocabulary_.items()},
        }
        (folder / MODEL_JSON).write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
        with (folder / MODEL_ARRAYS).open("wb") as out:
            np.savez_compressed(out, word_idf=self.word.idf_.astype(np.float32),
                                char_idf=self.char.idf_.astype(np.float32), coef=self.coef,
                                intercept=self.intercept)
        return [MODEL_JSON, MODEL_ARRAYS]

    @classmethod
    def load(cls, folder: Path) -> "TfidfSvmBackend":
        document = json.loads((folder / MODEL_JSON).read_text())
        if document.get("format") != FORMAT_VERSION or document.get("backend") != cls.name:
            raise ValueError(f"{folder / MODEL_JSON} is not a {cls.name} model of format {FORMAT_VERSION}")
        backend = cls(**document["params"])
        backend.beta = float(document["beta"])
        backend.classes = np.asarray(document["classes"], dtype=np.int64)
        with np.load(folder / MODEL_ARRAYS, allow_pickle=False) as arrays:
            backend.coef, backend.intercept = arrays["coef"], arrays["intercept"]
            word_idf, char_idf = arrays["word_idf"], arrays["char_idf"]
        min_df = backend.params["min_df"]
        backend.word = word_vectorizer(max_features=None, min_df=min_df)
        backend.char = char_vectorizer(max_features=None, min_df=min_df)
        for vectorizer, vocabulary, idf in ((backend.word, document["word_vocabulary"], word_idf),
                                            (backend.char, document["char_vocabulary"], char_idf)):
            vectorizer.vocabulary_ = vocabulary
            vectorizer.idf_ = idf
        return backend


BACKENDS = {TfidfSvmBackend.name: TfidfSvmBackend}


def backend_load(folder: Path):
    """The model saved in `folder`, by the backend named in its model.json."""
    name = json.loads((folder / MODEL_JSON).read_text()).get("backend")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r} in {folder / MODEL_JSON}")
    return BACKENDS[name].load(folder)
