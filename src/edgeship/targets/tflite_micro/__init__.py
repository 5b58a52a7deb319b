"""TFLite Micro: INT8 .tflite files run by the microcontroller interpreter, with their tensor arena."""
