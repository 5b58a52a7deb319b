"""compress/quantize"""
