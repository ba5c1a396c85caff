"""The digit-recognition core, as the app, the notebooks and the tests import it.

The code lives in the `digit_recognition` package, one module per concern;
this module is the single flat import surface the product card names:

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
from digit_recognition.preprocessing import (  # noqa: F401
    MNIST_SIZE, ink_map, normalize_ink, preprocess_drawing, preprocess_rgba,
)
from digit_recognition.strokes import (  # noqa: F401
    STYLES, CanvasParams, random_canvas_params, render_strokes, to_png_bytes,
)
from digit_recognition.training import (  # noqa: F401
    TrainingConfig, accuracy, load_training_data, save_model, train,
)
