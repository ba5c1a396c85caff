"""The digit-recognition core as one flat import, for the notebooks.

The code lives in the `digit_recognition` package, one module per concern; the
app, the tests and the benchmarks import those modules directly. This module is
the single flat import surface the product card names, for notebook users:

    from utils import preprocess_drawing, load_mnist, build_model
"""
from digit_recognition.datasets import (  # noqa: F401
    PenDigit, load_mnist, load_pen_digits, render_pen_digits, sha256_of,
)
from digit_recognition.errors import (  # noqa: F401
    DrawingError, EmptyDrawingError, ImageTooLargeError, InvalidImageError, UnsupportedImageError,
)
from digit_recognition.imaging import decode_base64_image, decode_drawing  # noqa: F401
from digit_recognition.model import (  # noqa: F401
    DigitClassifier, build_augmenter, build_model, compile_model,
)
from digit_recognition.inference import load_classifier  # noqa: F401
from digit_recognition.conversion import convert_model_file  # noqa: F401
from digit_recognition.preprocessing import (  # noqa: F401
    MNIST_SIZE, ink_map, normalize_ink, preprocess_drawing, preprocess_rgba,
)
from digit_recognition.strokes import (  # noqa: F401
    STYLES, CanvasParams, random_canvas_params, render_strokes, to_png_bytes,
)
from digit_recognition.training import (  # noqa: F401
    TrainingConfig, load_training_data, save_model, train,
)
from digit_recognition.evaluation import (  # noqa: F401
    accuracy_of, confusion_matrix, predict_digits, predict_probabilities,
)
from digit_recognition.finetuning import (  # noqa: F401
    DEFAULT_DATASET_PATH, DEFAULT_FINETUNED_MODEL_PATH, CollectedDataError, FinetuneConfig, PreparedDataset,
    finetune, labels_dir_from_environment, load_prepared_dataset, prepare_collected_dataset,
    served_model_path,
)
from digit_recognition.label_store import LabelStore  # noqa: F401
from digit_recognition.plots import (  # noqa: F401
    plot_before_after, plot_class_balance, plot_class_means, plot_confusion_matrix,
    plot_counts_per_digit, plot_digit_grid, plot_drawings_beside_mnist, plot_mistakes,
    plot_reliability_diagram, plot_training_curves,
)
from digit_recognition.non_digits import (  # noqa: F401
    DIGIT_LOOKALIKES, NOT_A_DIGIT_CHARS, SYNTHETIC_SHAPES, load_pen_chars, synthetic_non_digits,
)
from digit_recognition.reading import (  # noqa: F401
    DigitReading, DrawingReading, ReadingPolicy, apply_temperature, read_scores,
)
from digit_recognition.calibration import (  # noqa: F401
    expected_calibration_error, fit_temperature, reliability_bins,
)
